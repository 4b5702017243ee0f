// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    IERC20Minimal,
    IMintableERC20,
    IPriceOracleGetter,
    IPoolAddressesProvider
} from "./Interfaces.sol";

/// @title Pool (devnet)
/// @notice An Aave-V3-compatible lending pool for the Shortfall devnet, following
/// aave-dao/aave-v3-origin v3.7 (the current release) wherever a rule changes a position.
///
/// What callers see is Aave V3's interface byte for byte: `getUserAccountData`,
/// `getReservesList`, `getReserveData` (the 15-field legacy tuple), `getConfiguration`
/// (ReserveConfigurationMap bit layout), `getUserConfiguration` (bit 2i borrowing, 2i+1
/// collateral), `getReserveNormalizedIncome` / `getReserveNormalizedVariableDebt`,
/// `getReserveDeficit`, the liquid e-mode views (`getUserEMode`,
/// `getEModeCategoryCollateralConfig`, `getEModeCategoryLabel`,
/// `getEModeCategoryCollateralBitmap`, `getEModeCategoryBorrowableBitmap`,
/// `getEModeCategoryLtvzeroBitmap`, `getIsEModeCategoryIsolated`, the legacy
/// `getEModeCategoryData`), the `supply` / `withdraw` / `borrow` / `repay` / `setUserEMode` /
/// `setUserUseReserveAsCollateral` / `liquidationCall` entry points and the `Supply`,
/// `Withdraw`, `Borrow`, `Repay`, `UserEModeSet`, `LiquidationCall`, `DeficitCreated` events
/// with Aave's signatures.
///
/// Implemented as in v3.7:
/// - Interest: a liquidity index (linear interest, MathUtils.calculateLinearInterest) and a
///   variable borrow index (MathUtils.calculateCompoundedInterest, the x + x^2/2 + x^3/6
///   expansion), half-up rayMul onto the stored index, accrued on every action
///   (ReserveLogic.updateState: the liquidity index only while the rate is non-zero, the borrow
///   index only while the reserve has debt). Balances are stored scaled and rounded as
///   TokenMath does (aToken balance rayMulFloor, debt balance rayMulCeil; supply mints
///   rayDivFloor, borrow mints rayDivCeil, withdraw and aToken transfers rayDivCeil, debt burns
///   rayDivFloor).
/// - Liquid e-mode (v3.2+, with v3.4's LTV-zero bitmap and v3.7's `isolated` flag): a user's
///   category replaces LTV and liquidation threshold for the collateral in its collateral
///   bitmap (GenericLogic / ValidationLogic.getUserReserveLtv), and the liquidation bonus of
///   such collateral (LiquidationLogic); borrowing in e-mode needs the category's borrowable
///   bitmap (the reserve's borrowing flag is then ignored, v3.6); `setUserEMode` is a no-op for
///   the current category, else validateSetUserEMode (InconsistentEModeCategory,
///   InvalidDebtInEmode, InvalidCollateralInEmode) and HF >= 1 under the new category.
/// - Health factor rounding of v3.7 (collateral value rounded down, debt value rounded up,
///   sum(value x LT) wad-divided by debt then divided by 1e4); liquidations with Aave V3.3's
///   close factor, dust rule, bonus, protocol fee and deficit with v3.7's explicit rounding and
///   its scaled `hasNoCollateralLeft` rule; no self-liquidation; aTokens a liquidator receives
///   are not enabled as its collateral.
/// - Supply and borrow caps (configuration bits 116-151 and 80-115, whole tokens, 0 = none),
///   checked as ValidationLogic does (SupplyCapExceeded, BorrowCapExceeded).
///
/// Not implemented, because v3.7 removed them (docs/3.7/mode-removal.md): reserve isolation
/// mode, the debt ceiling (bits 212-251), borrowable-in-isolation (bit 61) and siloed
/// borrowing (bit 62). Those bits are ignored and `isolationModeTotalDebt` reads 0, as in
/// v3.7. v3.7's isolated e-mode is the supported way to confine collateral.
///
/// Simplifications, on purpose: rates are set by the admin per reserve and stay fixed (no rate
/// strategy, no utilisation curve), no treasury accrual (`accruedToTreasury` is 0), no stable
/// debt, no flash loans, no credit delegation, no liquidation grace period. Balances live inside
/// this contract; `aTokenAddress` and `variableDebtTokenAddress` point at read-only views
/// (DevnetScaledToken) of them. The admin's `seedPositions` writes many positions at once and
/// emits the same `Supply` / `Borrow` / `UserEModeSet` events a real market emits, so discovery
/// by log scanning finds every account.
contract Pool {
    // ---------------------------------------------------------------- Aave V3 data types
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

    struct CollateralConfig {
        uint16 ltv;
        uint16 liquidationThreshold;
        uint16 liquidationBonus;
    }

    struct EModeCategoryBaseConfiguration {
        uint16 ltv;
        uint16 liquidationThreshold;
        uint16 liquidationBonus;
        string label;
    }

    struct EModeCategoryLegacy {
        uint16 ltv;
        uint16 liquidationThreshold;
        uint16 liquidationBonus;
        address priceSource;
        string label;
    }

    struct EModeCategory {
        uint16 ltv;
        uint16 liquidationThreshold;
        uint16 liquidationBonus;
        uint128 collateralBitmap;
        bool isolated;
        string label;
        uint128 borrowableBitmap;
        uint128 ltvzeroBitmap;
    }

    struct Reserve {
        uint256 configuration;
        uint128 liquidityIndex;
        uint128 currentLiquidityRate;
        uint128 variableBorrowIndex;
        uint128 currentVariableBorrowRate;
        uint40 lastUpdateTimestamp;
        uint16 id;
        bool listed;
        address aTokenAddress;
        address variableDebtTokenAddress;
        uint128 deficit;
        uint256 scaledSupplied;
        uint256 scaledBorrowed;
    }

    struct AccountData {
        uint256 totalCollateralBase;
        uint256 totalDebtBase;
        uint256 avgLtv;
        uint256 avgLiquidationThreshold;
        uint256 healthFactor;
        bool hasZeroLtvCollateral;
    }

    struct LiquidationVars {
        uint256 userScaledCollateral;
        uint256 userCollateralBalance;
        uint256 userReserveDebt;
        uint256 actualDebtToLiquidate;
        uint256 actualCollateralToLiquidate;
        uint256 liquidationProtocolFeeAmount;
        uint256 liquidationBonus;
        uint256 collateralAssetPrice;
        uint256 debtAssetPrice;
        uint256 collateralAssetUnit;
        uint256 debtAssetUnit;
        uint256 userReserveDebtInBaseCurrency;
        uint256 userReserveCollateralInBaseCurrency;
        uint256 maxLiquidatableDebt;
        uint256 liquidityIndex;
    }

    // ---------------------------------------------------------------- events (Aave V3 IPool)
    event Supply(
        address indexed reserve,
        address user,
        address indexed onBehalfOf,
        uint256 amount,
        uint16 indexed referralCode
    );
    event Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount);
    event Borrow(
        address indexed reserve,
        address user,
        address indexed onBehalfOf,
        uint256 amount,
        uint8 interestRateMode,
        uint256 borrowRate,
        uint16 indexed referralCode
    );
    event Repay(
        address indexed reserve,
        address indexed user,
        address indexed repayer,
        uint256 amount,
        bool useATokens
    );
    event ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user);
    event ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user);
    event LiquidationCall(
        address indexed collateralAsset,
        address indexed debtAsset,
        address indexed user,
        uint256 debtToCover,
        uint256 liquidatedCollateralAmount,
        address liquidator,
        bool receiveAToken
    );
    event UserEModeSet(address indexed user, uint8 categoryId);
    event DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated);

    // ---------------------------------------------------------------- errors (Aave V3.7 names)
    error CallerNotPoolAdmin();
    error AssetNotListed();
    error ReserveAlreadyInitialized();
    error InvalidAmount();
    error ReserveInactive();
    error ReservePaused();
    error ReserveFrozen();
    error BorrowingNotEnabled();
    error InvalidInterestRateModeSelected();
    error LtvValidationFailed();
    error HealthFactorLowerThanLiquidationThreshold();
    error CollateralCannotCoverNewBorrow();
    error NotEnoughAvailableUserBalance();
    error NoDebtOfSelectedType();
    error UnderlyingBalanceZero();
    error HealthFactorNotBelowThreshold();
    error CollateralCannotBeLiquidated();
    error SpecifiedCurrencyNotBorrowedByUser();
    error MustNotLeaveDust();
    error CreditDelegationNotSupported();
    error SelfLiquidation();
    error NoExplicitAmountToRepayOnBehalf();
    error UserHasAssetWithZeroLtv();
    error TransferFailed();
    error BadSeedRecord(uint256 index);
    error SupplyCapExceeded();
    error BorrowCapExceeded();
    error NotBorrowableInEMode();
    error InconsistentEModeCategory();
    error InvalidDebtInEmode(address reserve, uint8 categoryId);
    error InvalidCollateralInEmode(address reserve, uint8 categoryId);
    error EModeCategoryReserved();
    error InvalidLtvParameters();

    // ---------------------------------------------------------------- constants
    uint256 internal constant WAD = 1e18;
    uint256 internal constant RAY = 1e27;
    uint256 internal constant HALF_RAY = 0.5e27;
    uint256 internal constant SECONDS_PER_YEAR = 365 days;
    uint256 internal constant PERCENTAGE_FACTOR = 1e4;
    uint256 internal constant HALF_PERCENTAGE_FACTOR = 0.5e4;
    uint256 public constant HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1e18;
    uint256 public constant CLOSE_FACTOR_HF_THRESHOLD = 0.95e18;
    uint256 public constant DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4;
    uint256 public constant MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000e8;
    uint256 public constant MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD / 2;
    uint256 public constant POOL_REVISION = 11;

    // ---------------------------------------------------------------- storage
    address public immutable ADDRESSES_PROVIDER;
    address public admin;
    address internal _treasury;

    mapping(address => Reserve) internal _reserves;
    address[] internal _reservesList;
    mapping(address => uint256) internal _usersConfig;
    mapping(address => uint8) internal _usersEMode;
    mapping(uint8 => EModeCategory) internal _eModeCategories;
    /// asset => user => scaled collateral (aToken) balance
    mapping(address => mapping(address => uint256)) internal _supplied;
    /// asset => user => scaled variable debt
    mapping(address => mapping(address => uint256)) internal _borrowed;

    constructor(address provider, address treasury) {
        ADDRESSES_PROVIDER = provider;
        admin = msg.sender;
        _treasury = treasury;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert CallerNotPoolAdmin();
        _;
    }

    // ================================================================ admin

    /// @notice Lists `asset` as the next reserve; `aToken` and `variableDebtToken` are the
    /// read-only balance views this pool reports in `getReserveData`. Indexes start at 1 ray.
    function initReserve(address asset, address aToken, address variableDebtToken)
        external
        onlyAdmin
    {
        Reserve storage r = _reserves[asset];
        if (r.listed) revert ReserveAlreadyInitialized();
        r.listed = true;
        r.id = uint16(_reservesList.length);
        r.aTokenAddress = aToken;
        r.variableDebtTokenAddress = variableDebtToken;
        r.liquidityIndex = uint128(RAY);
        r.variableBorrowIndex = uint128(RAY);
        r.lastUpdateTimestamp = uint40(block.timestamp);
        _reservesList.push(asset);
    }

    /// @notice Sets a reserve's ReserveConfigurationMap (same bit layout as Aave V3).
    function setConfiguration(address asset, ReserveConfigurationMap calldata configuration)
        external
        onlyAdmin
    {
        Reserve storage r = _listed(asset);
        r.configuration = configuration.data;
    }

    /// @notice Devnet knob: overwrites both indexes (ray) as of now. Existing scaled balances
    /// keep their scaled amounts, so their token balances move with the indexes.
    function setReserveIndexes(address asset, uint128 liquidityIndex, uint128 variableBorrowIndex)
        external
        onlyAdmin
    {
        Reserve storage r = _listed(asset);
        if (liquidityIndex == 0 || variableBorrowIndex == 0) revert InvalidAmount();
        r.liquidityIndex = liquidityIndex;
        r.variableBorrowIndex = variableBorrowIndex;
        r.lastUpdateTimestamp = uint40(block.timestamp);
    }

    /// @notice Sets the reserve's yearly rates (ray) after accruing interest at the old ones.
    function setReserveRates(address asset, uint128 liquidityRate, uint128 variableBorrowRate)
        external
        onlyAdmin
    {
        Reserve storage r = _listed(asset);
        _updateState(r);
        r.currentLiquidityRate = liquidityRate;
        r.currentVariableBorrowRate = variableBorrowRate;
    }

    /// @notice IPool.configureEModeCategory: LTV, liquidation threshold, bonus and label of
    /// category `id` (1-255), with PoolConfigurator.setEModeCategory's checks.
    function configureEModeCategory(uint8 id, EModeCategoryBaseConfiguration calldata category)
        external
        onlyAdmin
    {
        if (id == 0) revert EModeCategoryReserved();
        if (
            category.ltv > category.liquidationThreshold
                || (category.liquidationThreshold != 0 && category.liquidationBonus <= PERCENTAGE_FACTOR)
                || uint256(category.liquidationThreshold) * category.liquidationBonus
                    > PERCENTAGE_FACTOR * PERCENTAGE_FACTOR
        ) revert InvalidLtvParameters();
        EModeCategory storage c = _eModeCategories[id];
        c.ltv = category.ltv;
        c.liquidationThreshold = category.liquidationThreshold;
        c.liquidationBonus = category.liquidationBonus;
        c.label = category.label;
    }

    function configureEModeCategoryCollateralBitmap(uint8 id, uint128 collateralBitmap)
        external
        onlyAdmin
    {
        if (id == 0) revert EModeCategoryReserved();
        _eModeCategories[id].collateralBitmap = collateralBitmap;
    }

    function configureEModeCategoryBorrowableBitmap(uint8 id, uint128 borrowableBitmap)
        external
        onlyAdmin
    {
        if (id == 0) revert EModeCategoryReserved();
        _eModeCategories[id].borrowableBitmap = borrowableBitmap;
    }

    function configureEModeCategoryLtvzeroBitmap(uint8 id, uint128 ltvzeroBitmap)
        external
        onlyAdmin
    {
        if (id == 0) revert EModeCategoryReserved();
        _eModeCategories[id].ltvzeroBitmap = ltvzeroBitmap;
    }

    function configureEModeCategoryIsolated(uint8 id, bool isolated) external onlyAdmin {
        if (id == 0) revert EModeCategoryReserved();
        _eModeCategories[id].isolated = isolated;
    }

    function setTreasury(address treasury) external onlyAdmin {
        _treasury = treasury;
    }

    /// @notice Bulk seeding of positions (devnet admin only), emitting the events a real market
    /// emits: `Supply` (and `ReserveUsedAsCollateralEnabled` the first time a collateral is
    /// supplied), `UserEModeSet` and `Borrow` with `user == onBehalfOf`. No health-factor or
    /// e-mode check: the caller is responsible for valid, healthy positions. Amounts are in
    /// token units at the current indexes (stored scaled, rounded as supply and borrow do).
    /// The supplied underlying is minted to the pool.
    /// @param records two words per position: `uint160(user) | reserveId << 160 | kind << 168`
    /// (kind 0: supply as collateral, 1: variable borrow, 2: supply without enabling collateral,
    /// 3: enter e-mode category `amount`; the reserve id is ignored) and the amount. Positions
    /// of one user should be consecutive, in the order a user would act (supply, e-mode, borrow).
    function seedPositions(uint256[] calldata records) external onlyAdmin {
        uint256 n = records.length;
        if (n % 2 != 0) revert BadSeedRecord(n);
        uint256 nReserves = _reservesList.length;
        uint256[] memory supplied = new uint256[](nReserves);
        uint256[] memory scaledSupplied = new uint256[](nReserves);
        uint256[] memory scaledBorrowed = new uint256[](nReserves);
        address[] memory assets = _reservesList;
        for (uint256 id = 0; id < nReserves; id++) {
            _updateState(_reserves[assets[id]]);
        }
        address currentUser;
        uint256 config;
        for (uint256 i = 0; i < n; i += 2) {
            uint256 head = records[i];
            uint256 amount = records[i + 1];
            address user = address(uint160(head));
            uint256 id = (head >> 160) & 0xFF;
            uint256 kind = (head >> 168) & 0xFF;
            if (id >= nReserves || kind > 3 || amount == 0) revert BadSeedRecord(i / 2);
            if (user != currentUser) {
                if (currentUser != address(0)) _usersConfig[currentUser] = config;
                currentUser = user;
                config = _usersConfig[user];
            }
            if (kind == 3) {
                if (amount > type(uint8).max) revert BadSeedRecord(i / 2);
                _usersEMode[user] = uint8(amount);
                emit UserEModeSet(user, uint8(amount));
                continue;
            }
            address asset = assets[id];
            Reserve storage r = _reserves[asset];
            if (kind == 1) {
                uint256 scaled = _rayDivCeil(amount, r.variableBorrowIndex);
                _borrowed[asset][user] += scaled;
                scaledBorrowed[id] += scaled;
                config |= 1 << (id * 2);
                emit Borrow(asset, user, user, amount, 2, r.currentVariableBorrowRate, 0);
            } else {
                uint256 scaled = _rayDivFloor(amount, r.liquidityIndex);
                if (scaled == 0) revert BadSeedRecord(i / 2);
                _supplied[asset][user] += scaled;
                scaledSupplied[id] += scaled;
                supplied[id] += amount;
                // SupplyLogic.executeSupply: the collateral flag is set before `Supply` is emitted
                if (kind == 0 && (config >> (id * 2 + 1)) & 1 == 0) {
                    config |= 1 << (id * 2 + 1);
                    emit ReserveUsedAsCollateralEnabled(asset, user);
                }
                emit Supply(asset, user, user, amount, 0);
            }
        }
        if (currentUser != address(0)) _usersConfig[currentUser] = config;
        for (uint256 id = 0; id < nReserves; id++) {
            Reserve storage r = _reserves[assets[id]];
            if (supplied[id] != 0) {
                r.scaledSupplied += scaledSupplied[id];
                IMintableERC20(assets[id]).mint(address(this), supplied[id]);
            }
            if (scaledBorrowed[id] != 0) r.scaledBorrowed += scaledBorrowed[id];
        }
    }

    // ================================================================ Aave V3 views

    function getReservesList() external view returns (address[] memory) {
        return _reservesList;
    }

    function getReservesCount() external view returns (uint256) {
        return _reservesList.length;
    }

    function getReserveAddressById(uint16 id) external view returns (address) {
        return id < _reservesList.length ? _reservesList[id] : address(0);
    }

    /// @notice The legacy tuple with the stored (last updated) indexes, as Aave's does.
    function getReserveData(address asset) external view returns (ReserveDataLegacy memory res) {
        Reserve storage r = _reserves[asset];
        res.configuration = ReserveConfigurationMap(r.configuration);
        res.liquidityIndex = r.liquidityIndex;
        res.currentLiquidityRate = r.currentLiquidityRate;
        res.variableBorrowIndex = r.variableBorrowIndex;
        res.currentVariableBorrowRate = r.currentVariableBorrowRate;
        res.lastUpdateTimestamp = r.lastUpdateTimestamp;
        res.id = r.id;
        res.aTokenAddress = r.aTokenAddress;
        res.variableDebtTokenAddress = r.variableDebtTokenAddress;
    }

    function getConfiguration(address asset) external view returns (ReserveConfigurationMap memory) {
        return ReserveConfigurationMap(_reserves[asset].configuration);
    }

    function getUserConfiguration(address user) external view returns (UserConfigurationMap memory) {
        return UserConfigurationMap(_usersConfig[user]);
    }

    function getUserEMode(address user) external view returns (uint256) {
        return _usersEMode[user];
    }

    function getEModeCategoryCollateralConfig(uint8 id)
        external
        view
        returns (CollateralConfig memory)
    {
        EModeCategory storage c = _eModeCategories[id];
        return CollateralConfig(c.ltv, c.liquidationThreshold, c.liquidationBonus);
    }

    function getEModeCategoryLabel(uint8 id) external view returns (string memory) {
        return _eModeCategories[id].label;
    }

    function getEModeCategoryCollateralBitmap(uint8 id) external view returns (uint128) {
        return _eModeCategories[id].collateralBitmap;
    }

    function getEModeCategoryBorrowableBitmap(uint8 id) external view returns (uint128) {
        return _eModeCategories[id].borrowableBitmap;
    }

    function getEModeCategoryLtvzeroBitmap(uint8 id) external view returns (uint128) {
        return _eModeCategories[id].ltvzeroBitmap;
    }

    function getIsEModeCategoryIsolated(uint8 id) external view returns (bool) {
        return _eModeCategories[id].isolated;
    }

    /// @notice Deprecated in Aave (v3.2+) but still on the Pool: the price source is always 0.
    function getEModeCategoryData(uint8 id) external view returns (EModeCategoryLegacy memory) {
        EModeCategory storage c = _eModeCategories[id];
        return EModeCategoryLegacy(c.ltv, c.liquidationThreshold, c.liquidationBonus, address(0), c.label);
    }

    /// @notice ReserveLogic.getNormalizedIncome at the current block timestamp (0 if unlisted).
    function getReserveNormalizedIncome(address asset) external view returns (uint256) {
        Reserve storage r = _reserves[asset];
        return r.listed ? _normalizedIncome(r) : 0;
    }

    /// @notice ReserveLogic.getNormalizedDebt at the current block timestamp (0 if unlisted).
    function getReserveNormalizedVariableDebt(address asset) external view returns (uint256) {
        Reserve storage r = _reserves[asset];
        return r.listed ? _normalizedDebt(r) : 0;
    }

    function getReserveDeficit(address asset) external view returns (uint256) {
        return _reserves[asset].deficit;
    }

    function getUserAccountData(address user)
        external
        view
        returns (
            uint256 totalCollateralBase,
            uint256 totalDebtBase,
            uint256 availableBorrowsBase,
            uint256 currentLiquidationThreshold,
            uint256 ltv,
            uint256 healthFactor
        )
    {
        AccountData memory a = _accountData(user);
        uint256 borrowable = (a.totalCollateralBase * a.avgLtv) / PERCENTAGE_FACTOR;
        availableBorrowsBase = borrowable > a.totalDebtBase ? borrowable - a.totalDebtBase : 0;
        return (
            a.totalCollateralBase,
            a.totalDebtBase,
            availableBorrowsBase,
            a.avgLiquidationThreshold,
            a.avgLtv,
            a.healthFactor
        );
    }

    // ---------------------------------------------------------------- devnet-only views

    /// @notice Current collateral (aToken) balance and variable debt of `user` in `asset`,
    /// token units (aToken balanceOf / variable debt token balanceOf).
    function getUserBalances(address asset, address user)
        external
        view
        returns (uint256 collateral, uint256 debt)
    {
        Reserve storage r = _reserves[asset];
        if (!r.listed) return (0, 0);
        collateral = _rayMulFloor(_supplied[asset][user], _normalizedIncome(r));
        debt = _rayMulCeil(_borrowed[asset][user], _normalizedDebt(r));
    }

    /// @notice Scaled collateral and scaled variable debt of `user` in `asset`.
    function getUserScaledBalances(address asset, address user)
        external
        view
        returns (uint256 scaledCollateral, uint256 scaledDebt)
    {
        return (_supplied[asset][user], _borrowed[asset][user]);
    }

    /// @notice Current total supplied and total borrowed of a reserve, token units.
    function getReserveTotals(address asset)
        external
        view
        returns (uint256 supplied, uint256 borrowed)
    {
        Reserve storage r = _reserves[asset];
        if (!r.listed) return (0, 0);
        return (
            _rayMulFloor(r.scaledSupplied, _normalizedIncome(r)),
            _rayMulCeil(r.scaledBorrowed, _normalizedDebt(r))
        );
    }

    /// @notice Scaled totals of a reserve.
    function getReserveScaledTotals(address asset)
        external
        view
        returns (uint256 scaledSupplied, uint256 scaledBorrowed)
    {
        Reserve storage r = _reserves[asset];
        return (r.scaledSupplied, r.scaledBorrowed);
    }

    function getTreasury() external view returns (address) {
        return _treasury;
    }

    // ================================================================ user actions

    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)
        external
    {
        _supply(asset, amount, onBehalfOf, referralCode);
    }

    /// @notice Aave V2-era alias of `supply`, still on Aave V3's Pool.
    function deposit(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)
        external
    {
        _supply(asset, amount, onBehalfOf, referralCode);
    }

    /// SupplyLogic.executeSupply + ValidationLogic.validateSupply (v3.7).
    function _supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)
        internal
    {
        Reserve storage r = _listed(asset);
        _updateState(r);
        uint256 scaled = _rayDivFloor(amount, r.liquidityIndex);
        if (scaled == 0) revert InvalidAmount();
        uint256 cfg = r.configuration;
        _requireActive(cfg, true);
        uint256 supplyCap = (cfg >> 116) & ((1 << 36) - 1);
        if (
            supplyCap != 0
                && _rayMulFloor(r.scaledSupplied + scaled, r.liquidityIndex)
                    > supplyCap * 10 ** _decimals(cfg)
        ) revert SupplyCapExceeded();
        _pull(asset, msg.sender, amount);
        uint256 before = _supplied[asset][onBehalfOf];
        _supplied[asset][onBehalfOf] = before + scaled;
        r.scaledSupplied += scaled;
        // first supply enables the collateral flag when the user's LTV for it is non-zero
        // (validateUseAsCollateral), with its event before `Supply`.
        if (
            before == 0 && !_isCollateral(onBehalfOf, r.id)
                && _userReserveLtv(r, _usersEMode[onBehalfOf]) != 0
        ) {
            _usersConfig[onBehalfOf] |= 1 << (uint256(r.id) * 2 + 1);
            emit ReserveUsedAsCollateralEnabled(asset, onBehalfOf);
        }
        emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
    }

    /// SupplyLogic.executeWithdraw (v3.7).
    function withdraw(address asset, uint256 amount, address to) external returns (uint256) {
        Reserve storage r = _listed(asset);
        _updateState(r);
        uint256 scaledBalance = _supplied[asset][msg.sender];
        uint256 scaled;
        uint256 amountToWithdraw;
        if (amount == type(uint256).max) {
            scaled = scaledBalance;
            amountToWithdraw = _rayMulFloor(scaledBalance, r.liquidityIndex);
        } else {
            scaled = _rayDivCeil(amount, r.liquidityIndex);
            amountToWithdraw = amount;
        }
        if (scaled == 0) revert InvalidAmount();
        if (scaled > scaledBalance) revert NotEnoughAvailableUserBalance();
        _requireActive(r.configuration, false);
        _supplied[asset][msg.sender] = scaledBalance - scaled;
        r.scaledSupplied -= scaled;
        bool wasCollateral = _isCollateral(msg.sender, r.id);
        if (wasCollateral && scaled == scaledBalance) {
            _usersConfig[msg.sender] &= ~(uint256(1) << (uint256(r.id) * 2 + 1));
            emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
        }
        if (wasCollateral && _isBorrowingAny(msg.sender)) _validateHFAndLtvzero(r, msg.sender);
        _push(asset, to, amountToWithdraw);
        emit Withdraw(asset, msg.sender, to, amountToWithdraw);
        return amountToWithdraw;
    }

    /// BorrowLogic.executeBorrow + ValidationLogic.validateBorrow / validateHFAndLtv (v3.7).
    function borrow(
        address asset,
        uint256 amount,
        uint256 interestRateMode,
        uint16 referralCode,
        address onBehalfOf
    ) external {
        Reserve storage r = _listed(asset);
        if (onBehalfOf != msg.sender) revert CreditDelegationNotSupported();
        _updateState(r);
        uint256 scaled = _rayDivCeil(amount, r.variableBorrowIndex);
        if (scaled == 0) revert InvalidAmount();
        uint256 cfg = r.configuration;
        _requireActive(cfg, true);
        uint8 category = _usersEMode[onBehalfOf];
        if (category != 0) {
            if (!_onBitmap(_eModeCategories[category].borrowableBitmap, r.id)) {
                revert NotBorrowableInEMode();
            }
        } else if ((cfg >> 58) & 1 == 0) {
            revert BorrowingNotEnabled();
        }
        if (_rayMulFloor(r.scaledSupplied, r.liquidityIndex) < amount) revert InvalidAmount();
        if (interestRateMode != 2) revert InvalidInterestRateModeSelected();
        uint256 borrowCap = (cfg >> 80) & ((1 << 36) - 1);
        if (
            borrowCap != 0
                && _rayMulCeil(r.scaledBorrowed + scaled, r.variableBorrowIndex)
                    > borrowCap * 10 ** _decimals(cfg)
        ) revert BorrowCapExceeded();

        _borrowed[asset][onBehalfOf] += scaled;
        r.scaledBorrowed += scaled;
        _usersConfig[onBehalfOf] |= 1 << (uint256(r.id) * 2);
        _push(asset, msg.sender, amount);

        AccountData memory a = _accountData(onBehalfOf);
        if (a.avgLtv == 0) revert LtvValidationFailed();
        if (a.healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
            revert HealthFactorLowerThanLiquidationThreshold();
        }
        if (a.totalCollateralBase < _percentDivCeil(a.totalDebtBase, a.avgLtv)) {
            revert CollateralCannotCoverNewBorrow();
        }
        emit Borrow(asset, msg.sender, onBehalfOf, amount, 2, r.currentVariableBorrowRate, referralCode);
    }

    /// BorrowLogic.executeRepay (v3.7), repaying with the underlying.
    function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)
        external
        returns (uint256)
    {
        Reserve storage r = _listed(asset);
        _updateState(r);
        uint256 scaledDebt = _borrowed[asset][onBehalfOf];
        if (amount == 0) revert InvalidAmount();
        if (interestRateMode != 2) revert InvalidInterestRateModeSelected();
        if (amount == type(uint256).max && msg.sender != onBehalfOf) {
            revert NoExplicitAmountToRepayOnBehalf();
        }
        _requireActive(r.configuration, false);
        if (scaledDebt == 0) revert NoDebtOfSelectedType();
        uint256 debt = _rayMulCeil(scaledDebt, r.variableBorrowIndex);
        uint256 paybackAmount = amount < debt ? amount : debt;
        bool noMoreDebt = _burnScaledDebt(r, asset, onBehalfOf, paybackAmount);
        if (noMoreDebt) _usersConfig[onBehalfOf] &= ~(uint256(1) << (uint256(r.id) * 2));
        _pull(asset, msg.sender, paybackAmount);
        emit Repay(asset, onBehalfOf, msg.sender, paybackAmount, false);
        return paybackAmount;
    }

    /// SupplyLogic.executeUseReserveAsCollateral (v3.7).
    function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external {
        Reserve storage r = _listed(asset);
        _requireActive(r.configuration, false);
        uint256 bit = uint256(1) << (uint256(r.id) * 2 + 1);
        if (useAsCollateral == ((_usersConfig[msg.sender] & bit) != 0)) return;
        if (useAsCollateral) {
            if (_supplied[asset][msg.sender] == 0) revert UnderlyingBalanceZero();
            if (_userReserveLtv(r, _usersEMode[msg.sender]) == 0) revert UserHasAssetWithZeroLtv();
            _usersConfig[msg.sender] |= bit;
            emit ReserveUsedAsCollateralEnabled(asset, msg.sender);
        } else {
            _usersConfig[msg.sender] &= ~bit;
            if (_isBorrowingAny(msg.sender)) _validateHFAndLtvzero(r, msg.sender);
            emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
        }
    }

    /// SupplyLogic.executeSetUserEMode + ValidationLogic.validateSetUserEMode (v3.7): the
    /// category is written first so the health factor is checked under it.
    function setUserEMode(uint8 categoryId) external {
        if (_usersEMode[msg.sender] == categoryId) return;
        EModeCategory storage c = _eModeCategories[categoryId];
        if (categoryId != 0 && c.liquidationThreshold == 0) revert InconsistentEModeCategory();
        uint256 cfgBits = _usersConfig[msg.sender];
        _usersEMode[msg.sender] = categoryId;
        for (uint256 i = 0; cfgBits != 0; i++) {
            bool isBorrowed = cfgBits & 1 != 0;
            bool isCollateral = cfgBits & 2 != 0;
            cfgBits >>= 2;
            if (!isBorrowed && !isCollateral) continue;
            address asset = _reservesList[i];
            Reserve storage r = _reserves[asset];
            if (isBorrowed) {
                bool ok = categoryId != 0
                    ? _onBitmap(c.borrowableBitmap, i)
                    : (r.configuration >> 58) & 1 != 0;
                if (!ok) revert InvalidDebtInEmode(asset, categoryId);
            }
            if (isCollateral && _userReserveLtv(r, categoryId) == 0) {
                revert InvalidCollateralInEmode(asset, categoryId);
            }
        }
        if (_accountData(msg.sender).healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
            revert HealthFactorLowerThanLiquidationThreshold();
        }
        emit UserEModeSet(msg.sender, categoryId);
    }

    /// @notice Aave V3.3 liquidation rules as written in aave-v3-origin v3.7
    /// (LiquidationLogic.executeLiquidationCall, ValidationLogic.validateLiquidationCall).
    function liquidationCall(
        address collateralAsset,
        address debtAsset,
        address user,
        uint256 debtToCover,
        bool receiveAToken
    ) external {
        Reserve storage collateralReserve = _listed(collateralAsset);
        Reserve storage debtReserve = _listed(debtAsset);
        // debt reserve accrued first, then the collateral reserve (v3.7 order)
        _updateState(debtReserve);
        _updateState(collateralReserve);

        AccountData memory a = _accountData(user);
        LiquidationVars memory v;
        v.liquidityIndex = collateralReserve.liquidityIndex;
        v.userScaledCollateral = _supplied[collateralAsset][user];
        v.userCollateralBalance = _rayMulFloor(v.userScaledCollateral, v.liquidityIndex);
        v.userReserveDebt =
            _rayMulCeil(_borrowed[debtAsset][user], debtReserve.variableBorrowIndex);

        // ValidationLogic.validateLiquidationCall (v3.7)
        if (user == msg.sender) revert SelfLiquidation();
        _requireActive(collateralReserve.configuration, false);
        _requireActive(debtReserve.configuration, false);
        if (a.healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
            revert HealthFactorNotBelowThreshold();
        }
        if (!_isCollateral(user, collateralReserve.id)) revert CollateralCannotBeLiquidated();
        if (v.userReserveDebt == 0) revert SpecifiedCurrencyNotBorrowedByUser();

        // the e-mode bonus for collateral in the user's category, else the reserve's
        {
            uint8 category = _usersEMode[user];
            if (
                category != 0
                    && _onBitmap(_eModeCategories[category].collateralBitmap, collateralReserve.id)
            ) {
                v.liquidationBonus = _eModeCategories[category].liquidationBonus;
            } else {
                v.liquidationBonus = _liquidationBonus(collateralReserve.configuration);
            }
        }
        v.collateralAssetPrice = _price(collateralAsset);
        v.debtAssetPrice = _price(debtAsset);
        v.collateralAssetUnit = 10 ** _decimals(collateralReserve.configuration);
        v.debtAssetUnit = 10 ** _decimals(debtReserve.configuration);
        // debt value rounded up, collateral value rounded down (v3.7)
        v.userReserveDebtInBaseCurrency =
            _mulDivCeil(v.userReserveDebt, v.debtAssetPrice, v.debtAssetUnit);
        v.userReserveCollateralInBaseCurrency =
            (v.userCollateralBalance * v.collateralAssetPrice) / v.collateralAssetUnit;

        // Close factor: the whole reserve debt, unless collateral and debt of these reserves are
        // both >= $2,000, HF > 0.95 and this debt exceeds half the total: then 50% of the total.
        v.maxLiquidatableDebt = v.userReserveDebt;
        if (
            v.userReserveCollateralInBaseCurrency >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
                && v.userReserveDebtInBaseCurrency >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
                && a.healthFactor > CLOSE_FACTOR_HF_THRESHOLD
        ) {
            // still the half-up percentMul in v3.7
            uint256 totalDefaultLiquidatableDebtInBaseCurrency =
                _percentMul(a.totalDebtBase, DEFAULT_LIQUIDATION_CLOSE_FACTOR);
            if (v.userReserveDebtInBaseCurrency > totalDefaultLiquidatableDebtInBaseCurrency) {
                v.maxLiquidatableDebt = (totalDefaultLiquidatableDebtInBaseCurrency * v.debtAssetUnit)
                    / v.debtAssetPrice;
            }
        }
        v.actualDebtToLiquidate =
            debtToCover > v.maxLiquidatableDebt ? v.maxLiquidatableDebt : debtToCover;

        _calculateAvailableCollateralToLiquidate(
            v, _liquidationProtocolFee(collateralReserve.configuration)
        );

        // Dust rule: clear all the debt, or all the collateral, or leave >= $1,000 of both. The
        // debt left is valued rounding up, the collateral left (after the fee) rounding down.
        if (
            v.actualDebtToLiquidate < v.userReserveDebt
                && v.actualCollateralToLiquidate + v.liquidationProtocolFeeAmount
                    < v.userCollateralBalance
        ) {
            bool debtLeft = _mulDivCeil(
                v.userReserveDebt - v.actualDebtToLiquidate, v.debtAssetPrice, v.debtAssetUnit
            ) >= MIN_LEFTOVER_BASE;
            bool collateralLeft = (
                (
                    v.userCollateralBalance - v.actualCollateralToLiquidate
                        - v.liquidationProtocolFeeAmount
                ) * v.collateralAssetPrice
            ) / v.collateralAssetUnit >= MIN_LEFTOVER_BASE;
            if (!(debtLeft && collateralLeft)) revert MustNotLeaveDust();
        }

        // v3.7 hasNoCollateralLeft: the scaled collateral consumed (the burn or transfer to the
        // liquidator plus the fee transfer, each rayDivCeil, capped at the balance), valued at
        // the index, equals the user's whole collateral value.
        bool hasNoCollateralLeft;
        {
            uint256 consumed = _rayDivCeil(v.actualCollateralToLiquidate, v.liquidityIndex)
                + _rayDivCeil(v.liquidationProtocolFeeAmount, v.liquidityIndex);
            if (consumed > v.userScaledCollateral) consumed = v.userScaledCollateral;
            bool reserveFullyConsumed = consumed == v.userScaledCollateral;
            hasNoCollateralLeft = (
                _rayMulFloor(consumed, v.liquidityIndex) * v.collateralAssetPrice
            ) / v.collateralAssetUnit == a.totalCollateralBase;
            if (reserveFullyConsumed || hasNoCollateralLeft) {
                _usersConfig[user] &= ~(uint256(1) << (uint256(collateralReserve.id) * 2 + 1));
                emit ReserveUsedAsCollateralDisabled(collateralAsset, user);
            }
        }

        _burnDebt(
            debtReserve,
            debtAsset,
            user,
            v.userReserveDebt,
            v.actualDebtToLiquidate,
            hasNoCollateralLeft
        );

        _moveCollateral(collateralReserve, collateralAsset, user, v, receiveAToken);

        if (hasNoCollateralLeft && _isBorrowingAny(user)) _burnBadDebt(user);

        _pull(debtAsset, msg.sender, v.actualDebtToLiquidate);
        if (!receiveAToken) _push(collateralAsset, msg.sender, v.actualCollateralToLiquidate);

        emit LiquidationCall(
            collateralAsset,
            debtAsset,
            user,
            v.actualDebtToLiquidate,
            v.actualCollateralToLiquidate,
            msg.sender,
            receiveAToken
        );
    }

    // ================================================================ internals

    /// The collateral leg of a liquidation: to the liquidator (aToken transfer or burn, both
    /// rayDivCeil), then the fee to the treasury (rayDivCeil, capped at what is left: v3.7's
    /// 1-wei safety cap). Since v3.6 aTokens received by the liquidator are not enabled as its
    /// collateral.
    function _moveCollateral(
        Reserve storage r,
        address asset,
        address user,
        LiquidationVars memory v,
        bool receiveAToken
    ) internal {
        uint256 balance = v.userScaledCollateral;
        uint256 toLiquidator = _rayDivCeil(v.actualCollateralToLiquidate, v.liquidityIndex);
        if (toLiquidator > balance) toLiquidator = balance;
        balance -= toLiquidator;
        if (receiveAToken) {
            _supplied[asset][msg.sender] += toLiquidator;
        } else {
            r.scaledSupplied -= toLiquidator;
        }
        if (v.liquidationProtocolFeeAmount != 0) {
            uint256 fee = _rayDivCeil(v.liquidationProtocolFeeAmount, v.liquidityIndex);
            if (fee > balance) fee = balance;
            balance -= fee;
            _supplied[asset][_treasury] += fee;
        }
        _supplied[asset][user] = balance;
    }

    /// ValidationLogic.validateHFAndLtvzero: HF >= 1 and, when the user holds collateral with a
    /// zero LTV, the reserve being removed must be such a one.
    function _validateHFAndLtvzero(Reserve storage r, address user) internal view {
        AccountData memory a = _accountData(user);
        if (a.healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
            revert HealthFactorLowerThanLiquidationThreshold();
        }
        if (a.hasZeroLtvCollateral && _userReserveLtv(r, _usersEMode[user]) != 0) {
            revert LtvValidationFailed();
        }
    }

    /// ValidationLogic.getUserReserveLtv (v3.7): the category's LTV (or 0 if in its LTV-zero
    /// bitmap) for collateral in the category's bitmap; 0 for other collateral in an isolated
    /// category; else the reserve's LTV.
    function _userReserveLtv(Reserve storage r, uint8 category) internal view returns (uint256) {
        if (category != 0) {
            EModeCategory storage c = _eModeCategories[category];
            if (_onBitmap(c.collateralBitmap, r.id)) {
                return _onBitmap(c.ltvzeroBitmap, r.id) ? 0 : c.ltv;
            }
            if (c.isolated) return 0;
        }
        return _ltv(r.configuration);
    }

    /// GenericLogic.calculateUserAccountData with aave-v3-origin v3.7 rounding and e-mode.
    function _accountData(address user) internal view returns (AccountData memory a) {
        uint256 cfgBits = _usersConfig[user];
        if (cfgBits == 0) {
            a.healthFactor = type(uint256).max;
            return a;
        }
        uint8 category = _usersEMode[user];
        uint256 eModeLt;
        uint128 eModeBitmap;
        if (category != 0) {
            eModeLt = _eModeCategories[category].liquidationThreshold;
            eModeBitmap = _eModeCategories[category].collateralBitmap;
        }
        address oracle = IPoolAddressesProvider(ADDRESSES_PROVIDER).getPriceOracle();
        uint256 weightedLtv;
        uint256 weightedLt;
        for (uint256 i = 0; cfgBits != 0; i++) {
            bool isBorrowed = cfgBits & 1 != 0;
            bool isCollateral = cfgBits & 2 != 0;
            cfgBits >>= 2;
            if (!isBorrowed && !isCollateral) continue;
            address asset = _reservesList[i];
            Reserve storage r = _reserves[asset];
            uint256 cfg = r.configuration;
            uint256 lt = _liquidationThreshold(cfg);
            uint256 unit = 10 ** _decimals(cfg);
            uint256 price = IPriceOracleGetter(oracle).getAssetPrice(asset);
            if (lt != 0 && isCollateral) {
                uint256 value =
                    (_rayMulFloor(_supplied[asset][user], _normalizedIncome(r)) * price) / unit;
                a.totalCollateralBase += value;
                uint256 ltv = _userReserveLtv(r, category);
                if (ltv != 0) {
                    weightedLtv += value * ltv;
                } else {
                    a.hasZeroLtvCollateral = true;
                }
                weightedLt += value * (category != 0 && _onBitmap(eModeBitmap, i) ? eModeLt : lt);
            }
            if (isBorrowed) {
                a.totalDebtBase += _mulDivCeil(
                    _rayMulCeil(_borrowed[asset][user], _normalizedDebt(r)), price, unit
                );
            }
        }
        a.healthFactor = a.totalDebtBase == 0
            ? type(uint256).max
            : ((weightedLt * WAD + a.totalDebtBase / 2) / a.totalDebtBase) / PERCENTAGE_FACTOR;
        if (a.totalCollateralBase != 0) {
            a.avgLtv = weightedLtv / a.totalCollateralBase;
            a.avgLiquidationThreshold = weightedLt / a.totalCollateralBase;
        }
    }

    /// LiquidationLogic._calculateAvailableCollateralToLiquidate with v3.7's explicit rounding:
    /// seized collateral percentMulFloor, debt needed when the collateral runs short
    /// percentDivCeil, bonus base percentDivFloor, protocol fee percentMulCeil.
    function _calculateAvailableCollateralToLiquidate(LiquidationVars memory v, uint256 feeBps)
        internal
        pure
    {
        uint256 userCollateralBalance = v.userCollateralBalance;
        uint256 baseCollateral = (v.debtAssetPrice * v.actualDebtToLiquidate * v.collateralAssetUnit)
            / (v.collateralAssetPrice * v.debtAssetUnit);
        uint256 maxCollateralToLiquidate = _percentMulFloor(baseCollateral, v.liquidationBonus);
        uint256 collateralAmount;
        if (maxCollateralToLiquidate > userCollateralBalance) {
            collateralAmount = userCollateralBalance;
            v.actualDebtToLiquidate = _percentDivCeil(
                (v.collateralAssetPrice * collateralAmount * v.debtAssetUnit)
                    / (v.debtAssetPrice * v.collateralAssetUnit),
                v.liquidationBonus
            );
        } else {
            collateralAmount = maxCollateralToLiquidate;
        }
        if (feeBps != 0) {
            uint256 bonusCollateral =
                collateralAmount - _percentDivFloor(collateralAmount, v.liquidationBonus);
            v.liquidationProtocolFeeAmount = _percentMulCeil(bonusCollateral, feeBps);
            collateralAmount -= v.liquidationProtocolFeeAmount;
        }
        v.actualCollateralToLiquidate = collateralAmount;
    }

    /// Burns `amount` of debt (rayDivFloor, capped at the balance); true when none is left.
    function _burnScaledDebt(Reserve storage r, address asset, address user, uint256 amount)
        internal
        returns (bool noMoreDebt)
    {
        uint256 scaledDebt = _borrowed[asset][user];
        uint256 burn = _rayDivFloor(amount, r.variableBorrowIndex);
        if (burn > scaledDebt) burn = scaledDebt;
        _borrowed[asset][user] = scaledDebt - burn;
        r.scaledBorrowed -= burn;
        return burn == scaledDebt;
    }

    /// LiquidationLogic._burnDebtTokens: burn the repaid debt, or all of it (recording the rest
    /// as the reserve's deficit) when the user has no collateral left.
    function _burnDebt(
        Reserve storage debtReserve,
        address debtAsset,
        address user,
        uint256 userReserveDebt,
        uint256 actualDebtToLiquidate,
        bool hasNoCollateralLeft
    ) internal {
        bool noMoreDebt = true;
        if (userReserveDebt != 0) {
            noMoreDebt = _burnScaledDebt(
                debtReserve,
                debtAsset,
                user,
                hasNoCollateralLeft ? userReserveDebt : actualDebtToLiquidate
            );
        }
        uint256 outstanding = userReserveDebt - actualDebtToLiquidate;
        if (hasNoCollateralLeft && outstanding != 0) {
            debtReserve.deficit += uint128(outstanding);
            emit DeficitCreated(user, debtAsset, outstanding);
        }
        if (noMoreDebt) {
            _usersConfig[user] &= ~(uint256(1) << (uint256(debtReserve.id) * 2));
        }
    }

    /// LiquidationLogic._burnBadDebt: every remaining debt becomes deficit.
    function _burnBadDebt(address user) internal {
        uint256 n = _reservesList.length;
        for (uint256 i = 0; i < n; i++) {
            if ((_usersConfig[user] >> (i * 2)) & 1 == 0) continue;
            address asset = _reservesList[i];
            Reserve storage r = _reserves[asset];
            if ((r.configuration >> 56) & 1 == 0) continue;
            _updateState(r);
            _burnDebt(
                r, asset, user, _rayMulCeil(_borrowed[asset][user], r.variableBorrowIndex), 0, true
            );
        }
    }

    // ---------------------------------------------------------------- interest (ReserveLogic)

    /// ReserveLogic.updateState: indexes to now (the liquidity index only while its rate is
    /// non-zero, the borrow index only while the reserve has debt), timestamp to now.
    function _updateState(Reserve storage r) internal {
        if (r.lastUpdateTimestamp == uint40(block.timestamp)) return;
        if (r.currentLiquidityRate != 0) r.liquidityIndex = uint128(_normalizedIncome(r));
        if (r.scaledBorrowed != 0) r.variableBorrowIndex = uint128(_normalizedDebt(r));
        r.lastUpdateTimestamp = uint40(block.timestamp);
    }

    /// ReserveLogic.getNormalizedIncome: linear interest onto the liquidity index.
    function _normalizedIncome(Reserve storage r) internal view returns (uint256) {
        uint256 index = r.liquidityIndex;
        if (r.lastUpdateTimestamp == uint40(block.timestamp)) return index;
        uint256 linear = RAY
            + (uint256(r.currentLiquidityRate) * (block.timestamp - r.lastUpdateTimestamp))
                / SECONDS_PER_YEAR;
        return _rayMul(linear, index);
    }

    /// ReserveLogic.getNormalizedDebt: MathUtils.calculateCompoundedInterest (1 + x + x^2/2 +
    /// x^3/6 with x = rate x dt / year, in ray) onto the variable borrow index.
    function _normalizedDebt(Reserve storage r) internal view returns (uint256) {
        uint256 index = r.variableBorrowIndex;
        if (r.lastUpdateTimestamp == uint40(block.timestamp)) return index;
        uint256 x = (uint256(r.currentVariableBorrowRate) * (block.timestamp - r.lastUpdateTimestamp))
            / SECONDS_PER_YEAR;
        uint256 compounded = RAY + x + _rayMul(x, x / 2 + _rayMul(x, x / 6));
        return _rayMul(compounded, index);
    }

    function _listed(address asset) internal view returns (Reserve storage r) {
        r = _reserves[asset];
        if (!r.listed) revert AssetNotListed();
    }

    function _requireActive(uint256 cfg, bool checkFrozen) internal pure {
        if ((cfg >> 56) & 1 == 0) revert ReserveInactive();
        if ((cfg >> 60) & 1 != 0) revert ReservePaused();
        if (checkFrozen && (cfg >> 57) & 1 != 0) revert ReserveFrozen();
    }

    function _onBitmap(uint128 bitmap, uint256 id) internal pure returns (bool) {
        return (bitmap >> id) & 1 != 0;
    }

    function _isCollateral(address user, uint16 id) internal view returns (bool) {
        return (_usersConfig[user] >> (uint256(id) * 2 + 1)) & 1 != 0;
    }

    function _isBorrowingAny(address user) internal view returns (bool) {
        return _usersConfig[user] & 0x5555555555555555555555555555555555555555555555555555555555555555
            != 0;
    }

    function _price(address asset) internal view returns (uint256) {
        return IPriceOracleGetter(IPoolAddressesProvider(ADDRESSES_PROVIDER).getPriceOracle())
            .getAssetPrice(asset);
    }

    function _pull(address asset, address from, uint256 amount) internal {
        if (amount == 0) return;
        (bool ok, bytes memory ret) = asset.call(
            abi.encodeWithSelector(IERC20Minimal.transferFrom.selector, from, address(this), amount)
        );
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed();
    }

    function _push(address asset, address to, uint256 amount) internal {
        if (amount == 0) return;
        (bool ok, bytes memory ret) =
            asset.call(abi.encodeWithSelector(IERC20Minimal.transfer.selector, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed();
    }

    // ReserveConfigurationMap getters (Aave V3 bit layout)
    function _ltv(uint256 cfg) internal pure returns (uint256) {
        return cfg & 0xFFFF;
    }

    function _liquidationThreshold(uint256 cfg) internal pure returns (uint256) {
        return (cfg >> 16) & 0xFFFF;
    }

    function _liquidationBonus(uint256 cfg) internal pure returns (uint256) {
        return (cfg >> 32) & 0xFFFF;
    }

    function _decimals(uint256 cfg) internal pure returns (uint256) {
        return (cfg >> 48) & 0xFF;
    }

    function _liquidationProtocolFee(uint256 cfg) internal pure returns (uint256) {
        return (cfg >> 152) & 0xFFFF;
    }

    // WadRayMath (half-up rayMul, floor/ceil variants), PercentageMath (half-up percentMul,
    // the explicit floor/ceil variants) and MathUtils.mulDivCeil
    function _rayMul(uint256 a, uint256 b) internal pure returns (uint256) {
        return (a * b + HALF_RAY) / RAY;
    }

    function _rayMulFloor(uint256 a, uint256 b) internal pure returns (uint256) {
        return (a * b) / RAY;
    }

    function _rayMulCeil(uint256 a, uint256 b) internal pure returns (uint256) {
        return _mulDivCeil(a, b, RAY);
    }

    function _rayDivFloor(uint256 a, uint256 b) internal pure returns (uint256) {
        return (a * RAY) / b;
    }

    function _rayDivCeil(uint256 a, uint256 b) internal pure returns (uint256) {
        return _mulDivCeil(a, RAY, b);
    }

    function _percentMul(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return (value * percentage + HALF_PERCENTAGE_FACTOR) / PERCENTAGE_FACTOR;
    }

    function _percentMulFloor(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return (value * percentage) / PERCENTAGE_FACTOR;
    }

    function _percentMulCeil(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return _mulDivCeil(value, percentage, PERCENTAGE_FACTOR);
    }

    function _percentDivFloor(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return (value * PERCENTAGE_FACTOR) / percentage;
    }

    function _percentDivCeil(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return _mulDivCeil(value, PERCENTAGE_FACTOR, percentage);
    }

    function _mulDivCeil(uint256 a, uint256 b, uint256 c) internal pure returns (uint256) {
        uint256 p = a * b;
        return p / c + (p % c == 0 ? 0 : 1);
    }
}
