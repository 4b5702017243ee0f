// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IDevnetPoolBalances} from "./Interfaces.sol";

/// @title DevnetScaledToken
/// @notice A read-only view of the balances the devnet Pool keeps internally, standing where
/// Aave V3 has an aToken or a variable-debt token: `balanceOf` (scaled balance x normalized
/// index), `scaledBalanceOf`, `getScaledUserBalanceAndSupply`, `totalSupply`,
/// `scaledTotalSupply`, `UNDERLYING_ASSET_ADDRESS`, `POOL`.
/// Transfers are not supported and no `Transfer` events are emitted: balances move only
/// through the Pool.
contract DevnetScaledToken {
    address public immutable POOL;
    address public immutable UNDERLYING_ASSET_ADDRESS;
    /// True for the variable-debt view, false for the aToken view.
    bool public immutable isDebtToken;
    uint8 public immutable decimals;
    string public name;
    string public symbol;

    error NotSupported();

    constructor(
        address pool,
        address underlying,
        bool debt,
        uint8 decimals_,
        string memory name_,
        string memory symbol_
    ) {
        POOL = pool;
        UNDERLYING_ASSET_ADDRESS = underlying;
        isDebtToken = debt;
        decimals = decimals_;
        name = name_;
        symbol = symbol_;
    }

    /// @notice The current balance: the scaled balance times the reserve's normalized income
    /// (aToken, rounded down) or normalized variable debt (debt token, rounded up).
    function balanceOf(address user) public view returns (uint256) {
        (uint256 collateral, uint256 debt) =
            IDevnetPoolBalances(POOL).getUserBalances(UNDERLYING_ASSET_ADDRESS, user);
        return isDebtToken ? debt : collateral;
    }

    function scaledBalanceOf(address user) public view returns (uint256) {
        (uint256 collateral, uint256 debt) =
            IDevnetPoolBalances(POOL).getUserScaledBalances(UNDERLYING_ASSET_ADDRESS, user);
        return isDebtToken ? debt : collateral;
    }

    function getScaledUserBalanceAndSupply(address user) external view returns (uint256, uint256) {
        return (scaledBalanceOf(user), scaledTotalSupply());
    }

    function totalSupply() public view returns (uint256) {
        (uint256 supplied, uint256 borrowed) =
            IDevnetPoolBalances(POOL).getReserveTotals(UNDERLYING_ASSET_ADDRESS);
        return isDebtToken ? borrowed : supplied;
    }

    function scaledTotalSupply() public view returns (uint256) {
        (uint256 supplied, uint256 borrowed) =
            IDevnetPoolBalances(POOL).getReserveScaledTotals(UNDERLYING_ASSET_ADDRESS);
        return isDebtToken ? borrowed : supplied;
    }

    function RESERVE_TREASURY_ADDRESS() external view returns (address) {
        return IDevnetPoolBalances(POOL).getTreasury();
    }

    function transfer(address, uint256) external pure returns (bool) {
        revert NotSupported();
    }

    function transferFrom(address, address, uint256) external pure returns (bool) {
        revert NotSupported();
    }

    function approve(address, uint256) external pure returns (bool) {
        revert NotSupported();
    }

    function allowance(address, address) external pure returns (uint256) {
        return 0;
    }
}
