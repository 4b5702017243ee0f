// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IChainlinkFeed} from "./Interfaces.sol";

/// @title AaveOracle (devnet)
/// @notice Aave V3's price oracle interface: USD prices with 8 decimals read from
/// Chainlink-style sources (`latestAnswer`, as Aave's AaveOracle does). No fallback oracle:
/// a non-positive answer reverts.
contract AaveOracle {
    address public owner;
    address public immutable ADDRESSES_PROVIDER;
    /// USD as base currency: address(0), unit 1e8, as on Aave V3 Ethereum.
    address public constant BASE_CURRENCY = address(0);
    uint256 public constant BASE_CURRENCY_UNIT = 1e8;

    mapping(address => address) internal _sources;
    address internal _fallbackOracle;

    event BaseCurrencySet(address indexed baseCurrency, uint256 baseCurrencyUnit);
    event AssetSourceUpdated(address indexed asset, address indexed source);

    error NotOwner(address caller);
    error InconsistentParamsLength();
    error NoSourceForAsset(address asset);
    error NonPositivePrice(address asset, int256 answer);

    constructor(address provider) {
        owner = msg.sender;
        ADDRESSES_PROVIDER = provider;
        emit BaseCurrencySet(BASE_CURRENCY, BASE_CURRENCY_UNIT);
    }

    function setAssetSources(address[] calldata assets, address[] calldata sources) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (assets.length != sources.length) revert InconsistentParamsLength();
        for (uint256 i = 0; i < assets.length; i++) {
            _sources[assets[i]] = sources[i];
            emit AssetSourceUpdated(assets[i], sources[i]);
        }
    }

    function getSourceOfAsset(address asset) external view returns (address) {
        return _sources[asset];
    }

    /// No fallback oracle on the devnet (always address(0)).
    function getFallbackOracle() external view returns (address) {
        return _fallbackOracle;
    }

    function getAssetPrice(address asset) public view returns (uint256) {
        if (asset == BASE_CURRENCY) return BASE_CURRENCY_UNIT;
        address source = _sources[asset];
        if (source == address(0)) revert NoSourceForAsset(asset);
        int256 price = IChainlinkFeed(source).latestAnswer();
        if (price <= 0) revert NonPositivePrice(asset, price);
        return uint256(price);
    }

    function getAssetsPrices(address[] calldata assets) external view returns (uint256[] memory) {
        uint256[] memory prices = new uint256[](assets.length);
        for (uint256 i = 0; i < assets.length; i++) {
            prices[i] = getAssetPrice(assets[i]);
        }
        return prices;
    }
}
