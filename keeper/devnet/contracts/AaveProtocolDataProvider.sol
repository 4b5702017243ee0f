// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Minimal, IPoolAddressesProvider} from "./Interfaces.sol";

interface IPoolReads {
    struct ReserveConfigurationMap {
        uint256 data;
    }

    struct UserConfigurationMap {
        uint256 data;
    }

    struct ReserveDataLegacy {
        ReserveConfigurationMap configuration;
        uint128 liquidityIndex;
        uint128 currentLiquidityRate;
        uint128 variableBorrowIndex;
        uint128 currentVariableBorrowRate;
        uint128 currentStableBorrowRate;
        uint40 lastUpdateTimestamp;
        uint16 id;
        address aTokenAddress;
        address stableDebtTokenAddress;
        address variableDebtTokenAddress;
        address interestRateStrategyAddress;
        uint128 accruedToTreasury;
        uint128 unbacked;
        uint128 isolationModeTotalDebt;
    }

    function getReservesList() external view returns (address[] memory);
    function getReserveData(address asset) external view returns (ReserveDataLegacy memory);
    function getConfiguration(address asset) external view returns (ReserveConfigurationMap memory);
    function getUserConfiguration(address user) external view returns (UserConfigurationMap memory);
    function getReserveDeficit(address asset) external view returns (uint256);
}

interface IBalance {
    function balanceOf(address user) external view returns (uint256);
    function scaledBalanceOf(address user) external view returns (uint256);
    function totalSupply() external view returns (uint256);
}

/// @title AaveProtocolDataProvider (devnet)
/// @notice Aave V3's data-provider views over the devnet Pool, same signatures as Aave's
/// (aave-v3-origin v3.7). Like the real one it has no e-mode getters: e-mode is read from the
/// Pool (`getUserEMode`, `getEModeCategory*`).
contract AaveProtocolDataProvider {
    struct TokenData {
        string symbol;
        address tokenAddress;
    }

    address public immutable ADDRESSES_PROVIDER;

    constructor(address provider) {
        ADDRESSES_PROVIDER = provider;
    }

    function _pool() internal view returns (IPoolReads) {
        return IPoolReads(IPoolAddressesProvider(ADDRESSES_PROVIDER).getPool());
    }

    function getAllReservesTokens() external view returns (TokenData[] memory tokens) {
        address[] memory reserves = _pool().getReservesList();
        tokens = new TokenData[](reserves.length);
        for (uint256 i = 0; i < reserves.length; i++) {
            tokens[i] = TokenData(IERC20Minimal(reserves[i]).symbol(), reserves[i]);
        }
    }

    function getAllATokens() external view returns (TokenData[] memory tokens) {
        IPoolReads pool = _pool();
        address[] memory reserves = pool.getReservesList();
        tokens = new TokenData[](reserves.length);
        for (uint256 i = 0; i < reserves.length; i++) {
            address aToken = pool.getReserveData(reserves[i]).aTokenAddress;
            tokens[i] = TokenData(IERC20Minimal(aToken).symbol(), aToken);
        }
    }

    function getReserveConfigurationData(address asset)
        external
        view
        returns (
            uint256 decimals,
            uint256 ltv,
            uint256 liquidationThreshold,
            uint256 liquidationBonus,
            uint256 reserveFactor,
            bool usageAsCollateralEnabled,
            bool borrowingEnabled,
            bool stableBorrowRateEnabled,
            bool isActive,
            bool isFrozen
        )
    {
        uint256 cfg = _pool().getConfiguration(asset).data;
        ltv = cfg & 0xFFFF;
        liquidationThreshold = (cfg >> 16) & 0xFFFF;
        liquidationBonus = (cfg >> 32) & 0xFFFF;
        decimals = (cfg >> 48) & 0xFF;
        isActive = (cfg >> 56) & 1 != 0;
        isFrozen = (cfg >> 57) & 1 != 0;
        borrowingEnabled = (cfg >> 58) & 1 != 0;
        stableBorrowRateEnabled = false;
        reserveFactor = (cfg >> 64) & 0xFFFF;
        usageAsCollateralEnabled = liquidationThreshold != 0;
    }

    function getReserveCaps(address asset)
        external
        view
        returns (uint256 borrowCap, uint256 supplyCap)
    {
        uint256 cfg = _pool().getConfiguration(asset).data;
        borrowCap = (cfg >> 80) & ((1 << 36) - 1);
        supplyCap = (cfg >> 116) & ((1 << 36) - 1);
    }

    function getPaused(address asset) external view returns (bool isPaused) {
        return (_pool().getConfiguration(asset).data >> 60) & 1 != 0;
    }

    function getLiquidationProtocolFee(address asset) external view returns (uint256) {
        return (_pool().getConfiguration(asset).data >> 152) & 0xFFFF;
    }

    /// @notice v3.7 removed isolation mode: the debt ceiling reads 0 (decimals 2) and siloed
    /// borrowing false, the backward-compatible defaults of v3.7's data provider.
    function getDebtCeiling(address) external pure returns (uint256) {
        return 0;
    }

    function getDebtCeilingDecimals() external pure returns (uint256) {
        return 2;
    }

    function getSiloedBorrowing(address) external pure returns (bool) {
        return false;
    }

    function getFlashLoanEnabled(address asset) external view returns (bool) {
        return (_pool().getConfiguration(asset).data >> 63) & 1 != 0;
    }

    function getReserveDeficit(address asset) external view returns (uint256) {
        return _pool().getReserveDeficit(asset);
    }

    function getReserveData(address asset)
        external
        view
        returns (
            uint256 unbacked,
            uint256 accruedToTreasuryScaled,
            uint256 totalAToken,
            uint256 totalStableDebt,
            uint256 totalVariableDebt,
            uint256 liquidityRate,
            uint256 variableBorrowRate,
            uint256 stableBorrowRate,
            uint256 averageStableBorrowRate,
            uint256 liquidityIndex,
            uint256 variableBorrowIndex,
            uint40 lastUpdateTimestamp
        )
    {
        IPoolReads.ReserveDataLegacy memory r = _pool().getReserveData(asset);
        return (
            0,
            0,
            IBalance(r.aTokenAddress).totalSupply(),
            0,
            IBalance(r.variableDebtTokenAddress).totalSupply(),
            r.currentLiquidityRate,
            r.currentVariableBorrowRate,
            0,
            0,
            r.liquidityIndex,
            r.variableBorrowIndex,
            r.lastUpdateTimestamp
        );
    }

    function getATokenTotalSupply(address asset) external view returns (uint256) {
        return IBalance(_pool().getReserveData(asset).aTokenAddress).totalSupply();
    }

    function getTotalDebt(address asset) external view returns (uint256) {
        return IBalance(_pool().getReserveData(asset).variableDebtTokenAddress).totalSupply();
    }

    function getUserReserveData(address asset, address user)
        external
        view
        returns (
            uint256 currentATokenBalance,
            uint256 currentStableDebt,
            uint256 currentVariableDebt,
            uint256 principalStableDebt,
            uint256 scaledVariableDebt,
            uint256 stableBorrowRate,
            uint256 liquidityRate,
            uint40 stableRateLastUpdated,
            bool usageAsCollateralEnabled
        )
    {
        IPoolReads pool = _pool();
        IPoolReads.ReserveDataLegacy memory r = pool.getReserveData(asset);
        uint256 userConfig = pool.getUserConfiguration(user).data;
        currentATokenBalance = IBalance(r.aTokenAddress).balanceOf(user);
        currentVariableDebt = IBalance(r.variableDebtTokenAddress).balanceOf(user);
        scaledVariableDebt = IBalance(r.variableDebtTokenAddress).scaledBalanceOf(user);
        liquidityRate = r.currentLiquidityRate;
        usageAsCollateralEnabled = (userConfig >> (uint256(r.id) * 2 + 1)) & 1 != 0;
        return (
            currentATokenBalance,
            0,
            currentVariableDebt,
            0,
            scaledVariableDebt,
            0,
            liquidityRate,
            0,
            usageAsCollateralEnabled
        );
    }

    function getReserveTokensAddresses(address asset)
        external
        view
        returns (
            address aTokenAddress,
            address stableDebtTokenAddress,
            address variableDebtTokenAddress
        )
    {
        IPoolReads.ReserveDataLegacy memory r = _pool().getReserveData(asset);
        return (r.aTokenAddress, address(0), r.variableDebtTokenAddress);
    }
}
