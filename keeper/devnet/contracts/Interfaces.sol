// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// Minimal interfaces shared by the Shortfall devnet contracts.

interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function decimals() external view returns (uint8);
    function symbol() external view returns (string memory);
}

interface IMintableERC20 {
    function mint(address to, uint256 amount) external;
}

interface IChainlinkFeed {
    function latestAnswer() external view returns (int256);
    function decimals() external view returns (uint8);
}

interface IPriceOracleGetter {
    function getAssetPrice(address asset) external view returns (uint256);
}

interface IPoolAddressesProvider {
    function getPool() external view returns (address);
    function getPriceOracle() external view returns (address);
    function getPoolDataProvider() external view returns (address);
}

/// The devnet Pool's own views (not part of Aave's interface) that the token views and the
/// data provider read balances through: current balances (scaled x normalized index, rounded
/// as Aave's TokenMath) and the scaled balances behind them.
interface IDevnetPoolBalances {
    function getUserBalances(address asset, address user)
        external
        view
        returns (uint256 collateral, uint256 debt);
    function getReserveTotals(address asset)
        external
        view
        returns (uint256 supplied, uint256 borrowed);
    function getUserScaledBalances(address asset, address user)
        external
        view
        returns (uint256 scaledCollateral, uint256 scaledDebt);
    function getReserveScaledTotals(address asset)
        external
        view
        returns (uint256 scaledSupplied, uint256 scaledBorrowed);
    function getTreasury() external view returns (address);
}
