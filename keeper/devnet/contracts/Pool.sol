// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    IERC20Minimal,
    IMintableERC20,
    IPriceOracleGetter,
    IPoolAddressesProvider
} from "./Interfaces.sol";

/// @title Pool (devnet)
/// @notice An Aave-V3-compatible lending pool for the Shortfall devnet.
///
/// What callers see is Aave V3's interface byte for byte: `getUserAccountData`,
/// `getReservesList`, `getReserveData` (the 15-field legacy tuple), `getConfiguration`
/// (ReserveConfigurationMap bit layout), `getUserConfiguration` (bit 2i borrowing, 2i+1
/// collateral), `getUserEMode`, `getReserveDeficit`, the `supply` / `withdraw` / `borrow` /
/// `repay` / `liquidationCall` entry points and the `Supply`, `Withdraw`, `Borrow`, `Repay`,
/// `LiquidationCall`, `DeficitCreated` events with Aave's signatures.
///
/// Rules: health factor with the rounding of aave-v3-origin v3.7 (collateral value rounded
/// down, debt value rounded up, sum(value x LT) wad-divided by debt then divided by 1e4);
/// liquidations with Aave V3.3's close factor, dust rule, bonus, protocol fee and deficit, as
/// written in aave-v3-origin v3.7's LiquidationLogic (explicit floor/ceil rounding in the
/// collateral math, debt values rounded up, the fee counted in the collateral leftover, the
/// v3.7 `hasNoCollateralLeft` rule, no collateral auto-enable for aTokens a liquidator receives,
/// no self-liquidation) and v3.7's ValidationLogic for borrow / repay / withdraw.
///
/// Simplifications, on purpose: no interest accrual (indexes stay at 1 ray, rates at 0), no
/// e-mode (every user is in category 0), no isolation mode, no caps, no stable debt, no flash
/// loans, no credit delegation. Balances live inside this contract; `aTokenAddress` and
/// `variableDebtTokenAddress` point at read-only views (DevnetScaledToken) of them.
/// The admin's `seedPositions` writes many positions at once and emits the same `Supply` /
/// `Borrow` events a real market emits, so discovery by log scanning finds every account.
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

    struct Reserve {
        uint256 configuration;
        uint16 id;
        bool listed;
        uint40 lastUpdateTimestamp;
        address aTokenAddress;
        address variableDebtTokenAddress;
        uint128 deficit;
        uint256 totalSupplied;
        uint256 totalBorrowed;
    }

    struct AccountData {
        uint256 totalCollateralBase;
        uint256 totalDebtBase;
        uint256 avgLtv;
        uint256 avgLiquidationThreshold;
        uint256 healthFactor;
    }

    struct LiquidationVars {
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
    /// Declared for interface parity; never emitted (no e-mode on the devnet).
    event UserEModeSet(address indexed user, uint8 categoryId);
    event DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated);

    // ---------------------------------------------------------------- errors (Aave V3.4+ names)
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

    // ---------------------------------------------------------------- constants
    uint256 internal constant WAD = 1e18;
    uint256 internal constant RAY = 1e27;
    uint256 internal constant PERCENTAGE_FACTOR = 1e4;
    uint256 internal constant HALF_PERCENTAGE_FACTOR = 0.5e4;
    uint256 public constant HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1e18;
    uint256 public constant CLOSE_FACTOR_HF_THRESHOLD = 0.95e18;
    uint256 public constant DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4;
    uint256 public constant MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000e8;
    uint256 public constant MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD / 2;
    uint256 public constant POOL_REVISION = 7;

    // ---------------------------------------------------------------- storage
    address public immutable ADDRESSES_PROVIDER;
    address public admin;
    address internal _treasury;

    mapping(address => Reserve) internal _reserves;
    address[] internal _reservesList;
    mapping(address => uint256) internal _usersConfig;
    /// Never written: every user stays in e-mode category 0.
    mapping(address => uint8) internal _usersEMode;
    /// asset => user => collateral (aToken) balance in token units
    mapping(address => mapping(address => uint256)) internal _supplied;
    /// asset => user => variable debt in token units
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
    /// read-only balance views this pool reports in `getReserveData`.
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

    function setTreasury(address treasury) external onlyAdmin {
        _treasury = treasury;
    }

    /// @notice Bulk seeding of positions (devnet admin only), emitting the events a real market
    /// emits: `Supply` (and `ReserveUsedAsCollateralEnabled` the first time a collateral is
    /// supplied) and `Borrow` with `user == onBehalfOf`. No health-factor check: the caller
    /// is responsible for healthy positions. The supplied underlying is minted to the pool.
    /// @param records two words per position: `uint160(user) | reserveId << 160 | kind << 168`
    /// (kind 0: supply as collateral, 1: variable borrow, 2: supply without enabling collateral)
    /// and the amount in token units. Positions of one user should be consecutive.
    function seedPositions(uint256[] calldata records) external onlyAdmin {
        uint256 n = records.length;
        if (n % 2 != 0) revert BadSeedRecord(n);
        uint256 nReserves = _reservesList.length;
        uint256[] memory supplied = new uint256[](nReserves);
        uint256[] memory borrowed = new uint256[](nReserves);
        address[] memory assets = _reservesList;
        address currentUser;
        uint256 config;
        for (uint256 i = 0; i < n; i += 2) {
            uint256 head = records[i];
            uint256 amount = records[i + 1];
            address user = address(uint160(head));
            uint256 id = (head >> 160) & 0xFF;
            uint256 kind = (head >> 168) & 0xFF;
            if (id >= nReserves || kind > 2 || amount == 0) revert BadSeedRecord(i / 2);
            if (user != currentUser) {
                if (currentUser != address(0)) _usersConfig[currentUser] = config;
                currentUser = user;
                config = _usersConfig[user];
            }
            address asset = assets[id];
            if (kind == 1) {
                _borrowed[asset][user] += amount;
                borrowed[id] += amount;
                config |= 1 << (id * 2);
                emit Borrow(asset, user, user, amount, 2, 0, 0);
            } else {
                _supplied[asset][user] += amount;
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
                r.totalSupplied += supplied[id];
                IMintableERC20(assets[id]).mint(address(this), supplied[id]);
            }
            if (borrowed[id] != 0) r.totalBorrowed += borrowed[id];
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

    function getReserveData(address asset) external view returns (ReserveDataLegacy memory res) {
        Reserve storage r = _reserves[asset];
        res.configuration = ReserveConfigurationMap(r.configuration);
        res.liquidityIndex = uint128(RAY);
        res.variableBorrowIndex = uint128(RAY);
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

    /// @notice Always 0 on the devnet: e-mode categories are not implemented.
    function getUserEMode(address user) external view returns (uint256) {
        return _usersEMode[user];
    }

    /// @notice 1 ray for a listed reserve (no interest accrues on the devnet), else 0.
    function getReserveNormalizedIncome(address asset) external view returns (uint256) {
        return _reserves[asset].listed ? RAY : 0;
    }

    function getReserveNormalizedVariableDebt(address asset) external view returns (uint256) {
        return _reserves[asset].listed ? RAY : 0;
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

    /// @notice Collateral (aToken) balance and variable debt of `user` in `asset`, token units.
    function getUserBalances(address asset, address user)
        external
        view
        returns (uint256 collateral, uint256 debt)
    {
        return (_supplied[asset][user], _borrowed[asset][user]);
    }

    /// @notice Total supplied and total borrowed of a reserve, token units.
    function getReserveTotals(address asset)
        external
        view
        returns (uint256 supplied, uint256 borrowed)
    {
        Reserve storage r = _reserves[asset];
        return (r.totalSupplied, r.totalBorrowed);
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

    function _supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)
        internal
    {
        Reserve storage r = _listed(asset);
        if (amount == 0) revert InvalidAmount();
        _requireActive(r.configuration, true);
        _pull(asset, msg.sender, amount);
        uint256 before = _supplied[asset][onBehalfOf];
        _supplied[asset][onBehalfOf] = before + amount;
        r.totalSupplied += amount;
        // SupplyLogic.executeSupply: first supply enables the collateral flag (LTV != 0), and
        // that happens (with its event) before `Supply` is emitted.
        if (before == 0 && _ltv(r.configuration) != 0 && !_isCollateral(onBehalfOf, r.id)) {
            _usersConfig[onBehalfOf] |= 1 << (uint256(r.id) * 2 + 1);
            emit ReserveUsedAsCollateralEnabled(asset, onBehalfOf);
        }
        emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
    }

    function withdraw(address asset, uint256 amount, address to) external returns (uint256) {
        Reserve storage r = _listed(asset);
        _requireActive(r.configuration, false);
        uint256 balance = _supplied[asset][msg.sender];
        uint256 amountToWithdraw = amount == type(uint256).max ? balance : amount;
        if (amountToWithdraw == 0) revert InvalidAmount();
        if (amountToWithdraw > balance) revert NotEnoughAvailableUserBalance();
        _supplied[asset][msg.sender] = balance - amountToWithdraw;
        r.totalSupplied -= amountToWithdraw;
        bool wasCollateral = _isCollateral(msg.sender, r.id);
        if (wasCollateral && amountToWithdraw == balance) {
            _usersConfig[msg.sender] &= ~(uint256(1) << (uint256(r.id) * 2 + 1));
            emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
        }
        if (wasCollateral && _isBorrowingAny(msg.sender)) {
            if (_accountData(msg.sender).healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
                revert HealthFactorLowerThanLiquidationThreshold();
            }
        }
        _push(asset, to, amountToWithdraw);
        emit Withdraw(asset, msg.sender, to, amountToWithdraw);
        return amountToWithdraw;
    }

    function borrow(
        address asset,
        uint256 amount,
        uint256 interestRateMode,
        uint16 referralCode,
        address onBehalfOf
    ) external {
        Reserve storage r = _listed(asset);
        if (amount == 0) revert InvalidAmount();
        if (onBehalfOf != msg.sender) revert CreditDelegationNotSupported();
        if (interestRateMode != 2) revert InvalidInterestRateModeSelected();
        uint256 cfg = r.configuration;
        // ValidationLogic.validateBorrow (v3.7)
        _requireActive(cfg, true);
        if ((cfg >> 58) & 1 == 0) revert BorrowingNotEnabled();
        if (r.totalSupplied < amount) revert InvalidAmount(); // aToken.totalSupply() >= amount

        // BorrowLogic.executeBorrow: mint the debt, set the flag, send the funds, then
        // ValidationLogic.validateHFAndLtv on the *new* position (a revert undoes it all).
        _borrowed[asset][onBehalfOf] += amount;
        r.totalBorrowed += amount;
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
        emit Borrow(asset, msg.sender, onBehalfOf, amount, 2, 0, referralCode);
    }

    function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)
        external
        returns (uint256)
    {
        Reserve storage r = _listed(asset);
        if (amount == 0) revert InvalidAmount();
        if (interestRateMode != 2) revert InvalidInterestRateModeSelected();
        if (amount == type(uint256).max && msg.sender != onBehalfOf) {
            revert NoExplicitAmountToRepayOnBehalf();
        }
        _requireActive(r.configuration, false);
        uint256 debt = _borrowed[asset][onBehalfOf];
        if (debt == 0) revert NoDebtOfSelectedType();
        uint256 paybackAmount = amount < debt ? amount : debt;
        _pull(asset, msg.sender, paybackAmount);
        _borrowed[asset][onBehalfOf] = debt - paybackAmount;
        r.totalBorrowed -= paybackAmount;
        if (paybackAmount == debt) {
            _usersConfig[onBehalfOf] &= ~(uint256(1) << (uint256(r.id) * 2));
        }
        emit Repay(asset, onBehalfOf, msg.sender, paybackAmount, false);
        return paybackAmount;
    }

    function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external {
        Reserve storage r = _listed(asset);
        _requireActive(r.configuration, false);
        uint256 bit = uint256(1) << (uint256(r.id) * 2 + 1);
        if (useAsCollateral == ((_usersConfig[msg.sender] & bit) != 0)) return;
        if (useAsCollateral) {
            if (_supplied[asset][msg.sender] == 0) revert UnderlyingBalanceZero();
            if (_ltv(r.configuration) == 0) revert UserHasAssetWithZeroLtv();
            _usersConfig[msg.sender] |= bit;
            emit ReserveUsedAsCollateralEnabled(asset, msg.sender);
        } else {
            _usersConfig[msg.sender] &= ~bit;
            if (
                _isBorrowingAny(msg.sender)
                    && _accountData(msg.sender).healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
            ) revert HealthFactorLowerThanLiquidationThreshold();
            emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
        }
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

        AccountData memory a = _accountData(user);
        LiquidationVars memory v;
        v.userCollateralBalance = _supplied[collateralAsset][user];
        v.userReserveDebt = _borrowed[debtAsset][user];

        // ValidationLogic.validateLiquidationCall (v3.7): no self-liquidation; both reserves
        // active and not paused; HF < 1; the collateral flag set (v3.7 no longer also requires
        // LT != 0 here); some debt in the debt reserve.
        if (user == msg.sender) revert SelfLiquidation();
        _requireActive(collateralReserve.configuration, false);
        _requireActive(debtReserve.configuration, false);
        if (a.healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD) {
            revert HealthFactorNotBelowThreshold();
        }
        if (!_isCollateral(user, collateralReserve.id)) revert CollateralCannotBeLiquidated();
        if (v.userReserveDebt == 0) revert SpecifiedCurrencyNotBorrowedByUser();

        v.liquidationBonus = _liquidationBonus(collateralReserve.configuration);
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

        // v3.7 hasNoCollateralLeft: the value of the collateral consumed (to the liquidator plus
        // the fee, capped at the balance) equals the user's whole collateral value. With the
        // liquidity index fixed at 1 ray the scaled amounts are the token amounts.
        bool hasNoCollateralLeft;
        {
            uint256 consumed = v.actualCollateralToLiquidate + v.liquidationProtocolFeeAmount;
            if (consumed > v.userCollateralBalance) consumed = v.userCollateralBalance;
            bool reserveFullyConsumed = consumed == v.userCollateralBalance;
            hasNoCollateralLeft = (consumed * v.collateralAssetPrice) / v.collateralAssetUnit
                == a.totalCollateralBase;
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

        // Collateral: to the liquidator (as underlying or as aToken balance), fee to treasury.
        // Since v3.6 aTokens received by the liquidator are not enabled as its collateral.
        _supplied[collateralAsset][user] =
            v.userCollateralBalance - v.actualCollateralToLiquidate - v.liquidationProtocolFeeAmount;
        if (receiveAToken) {
            _supplied[collateralAsset][msg.sender] += v.actualCollateralToLiquidate;
        } else {
            collateralReserve.totalSupplied -= v.actualCollateralToLiquidate;
        }
        if (v.liquidationProtocolFeeAmount != 0) {
            _supplied[collateralAsset][_treasury] += v.liquidationProtocolFeeAmount;
        }

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

    /// GenericLogic.calculateUserAccountData with aave-v3-origin v3.7 rounding.
    function _accountData(address user) internal view returns (AccountData memory a) {
        uint256 cfgBits = _usersConfig[user];
        if (cfgBits == 0) {
            a.healthFactor = type(uint256).max;
            return a;
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
            uint256 cfg = _reserves[asset].configuration;
            uint256 lt = _liquidationThreshold(cfg);
            uint256 unit = 10 ** _decimals(cfg);
            uint256 price = IPriceOracleGetter(oracle).getAssetPrice(asset);
            if (lt != 0 && isCollateral) {
                uint256 value = (_supplied[asset][user] * price) / unit;
                a.totalCollateralBase += value;
                weightedLtv += value * _ltv(cfg);
                weightedLt += value * lt;
            }
            if (isBorrowed) {
                a.totalDebtBase += _mulDivCeil(_borrowed[asset][user], price, unit);
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
        uint256 burned = hasNoCollateralLeft ? userReserveDebt : actualDebtToLiquidate;
        _borrowed[debtAsset][user] = userReserveDebt - burned;
        debtReserve.totalBorrowed -= burned;
        uint256 outstanding = userReserveDebt - actualDebtToLiquidate;
        if (hasNoCollateralLeft && outstanding != 0) {
            debtReserve.deficit += uint128(outstanding);
            emit DeficitCreated(user, debtAsset, outstanding);
            outstanding = 0;
        }
        if (outstanding == 0) {
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
            _burnDebt(r, asset, user, _borrowed[asset][user], 0, true);
        }
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

    // PercentageMath (half-up percentMul, and the explicit floor/ceil variants) and
    // MathUtils.mulDivCeil
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
