// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title PoolAddressesProvider (devnet)
/// @notice The registry Aave V3 readers start from: `getPool`, `getPriceOracle`,
/// `getPoolDataProvider`, and the generic `getAddress(bytes32)`. No proxies: the addresses are
/// the contracts themselves.
contract PoolAddressesProvider {
    bytes32 private constant POOL = "POOL";
    bytes32 private constant PRICE_ORACLE = "PRICE_ORACLE";
    bytes32 private constant DATA_PROVIDER = "DATA_PROVIDER";
    bytes32 private constant ACL_ADMIN = "ACL_ADMIN";
    bytes32 private constant ACL_MANAGER = "ACL_MANAGER";
    bytes32 private constant PRICE_ORACLE_SENTINEL = "PRICE_ORACLE_SENTINEL";

    address public owner;
    string internal _marketId;
    mapping(bytes32 => address) internal _addresses;

    event MarketIdSet(string indexed oldMarketId, string indexed newMarketId);
    event AddressSet(bytes32 indexed id, address indexed oldAddress, address indexed newAddress);
    event PoolUpdated(address indexed oldAddress, address indexed newAddress);
    event PriceOracleUpdated(address indexed oldAddress, address indexed newAddress);
    event PoolDataProviderUpdated(address indexed oldAddress, address indexed newAddress);

    error NotOwner(address caller);

    constructor(string memory marketId, address aclAdmin) {
        owner = msg.sender;
        _marketId = marketId;
        _addresses[ACL_ADMIN] = aclAdmin;
        emit MarketIdSet("", marketId);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function getMarketId() external view returns (string memory) {
        return _marketId;
    }

    function getAddress(bytes32 id) external view returns (address) {
        return _addresses[id];
    }

    function setAddress(bytes32 id, address newAddress) external onlyOwner {
        address old = _addresses[id];
        _addresses[id] = newAddress;
        emit AddressSet(id, old, newAddress);
    }

    function getPool() external view returns (address) {
        return _addresses[POOL];
    }

    function setPoolImpl(address newPool) external onlyOwner {
        address old = _addresses[POOL];
        _addresses[POOL] = newPool;
        emit PoolUpdated(old, newPool);
    }

    function getPriceOracle() external view returns (address) {
        return _addresses[PRICE_ORACLE];
    }

    function setPriceOracle(address newPriceOracle) external onlyOwner {
        address old = _addresses[PRICE_ORACLE];
        _addresses[PRICE_ORACLE] = newPriceOracle;
        emit PriceOracleUpdated(old, newPriceOracle);
    }

    function getPoolDataProvider() external view returns (address) {
        return _addresses[DATA_PROVIDER];
    }

    function setPoolDataProvider(address newDataProvider) external onlyOwner {
        address old = _addresses[DATA_PROVIDER];
        _addresses[DATA_PROVIDER] = newDataProvider;
        emit PoolDataProviderUpdated(old, newDataProvider);
    }

    function getACLAdmin() external view returns (address) {
        return _addresses[ACL_ADMIN];
    }

    function getACLManager() external view returns (address) {
        return _addresses[ACL_MANAGER];
    }

    function getPriceOracleSentinel() external view returns (address) {
        return _addresses[PRICE_ORACLE_SENTINEL];
    }
}
