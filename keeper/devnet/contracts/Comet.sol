// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Minimal, IMintableERC20} from "./Interfaces.sol";

/// Chainlink AggregatorV3, as Comet reads its price feeds.
interface ICometPriceFeed {
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    function decimals() external view returns (uint8);
}

/// @title Comet (devnet)
/// @notice A Compound-V3-compatible market (one base asset, up to 15 collateral assets) for the
/// Shortfall devnet, written for it. What callers see is Comet's public interface with the real
/// signatures, selectors and events (compound-finance/comet CometMainInterface, CometExtInterface):
/// `numAssets`, `getAssetInfo` / `getAssetInfoByAddress` (factors 1e18-scaled, kept to 4 decimals
/// as Comet packs them), `userBasic` (signed principal, `assetsIn` bitmap), `userCollateral`,
/// `collateralBalanceOf`, `balanceOf` / `borrowBalanceOf` (present values at the indexes accrued
/// to the block), `totalsBasic`, `getPrice` (8-decimal feeds), `getReserves` (signed),
/// `getCollateralReserves`, `getUtilization` / `getSupplyRate` / `getBorrowRate` (the kinked
/// per-second model), `isLiquidatable` / `isBorrowCollateralized`, `quoteCollateral`, `absorb`,
/// `buyCollateral`, `supply` / `withdraw` / `transfer` and their `To` / `Asset` forms, and the
/// events `Supply`, `Withdraw`, `Transfer`, `SupplyCollateral`, `WithdrawCollateral`,
/// `TransferCollateral`, `AbsorbDebt`, `AbsorbCollateral`, `BuyCollateral`.
///
/// Rules, as in Comet:
/// - Interest: a supply and a borrow index (1e15 = 1), each grown by index x rate x elapsed
///   seconds / 1e18 on every accrual, the rates from the utilization at the stored indexes.
///   Principals are stored: a supply principal is the present value x 1e15 / index rounded
///   down, a borrow principal rounded up; present values are principal x index / 1e15 rounded
///   down. Views that name the account (`isLiquidatable`) use the stored indexes, like Comet;
///   `balanceOf`, `borrowBalanceOf`, `getReserves`, `totalSupply`, `totalBorrow` accrue first.
/// - Liquidatable when the base balance's value plus the sum over collateral of value x
///   `liquidateCollateralFactor` is below zero (values in 1e8 USD, each product rounded down).
/// - `absorb` takes all of an account's collateral, credits value x `liquidationFactor` to its
///   base balance (never below zero: the reserves pay what is left), emits `AbsorbCollateral`
///   per asset and `AbsorbDebt`, and counts gas points for the absorber (no bonus).
/// - `buyCollateral` sells absorbed collateral for base at the store-front discount
///   `storeFrontPriceFactor x (1 - liquidationFactor)`, only while reserves are below
///   `targetReserves`.
///
/// Simplifications, on purpose: configuration lives in storage set by the governor
/// (`addAsset`) rather than in immutables behind a proxy; no reward tracking (the tracking
/// fields read 0); no `allow` / permit managers (only the owner moves its balances); no
/// extension delegate. The governor's `seedAccounts` writes many positions at once with the
/// events a real market emits, and `seedReserves` sets the base token cash so `getReserves`
/// reads what the deployment wants.
contract Comet {
    struct AssetInfo {
        uint8 offset;
        address asset;
        address priceFeed;
        uint64 scale;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }

    struct AssetConfig {
        address asset;
        address priceFeed;
        uint8 decimals;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }

    struct Configuration {
        address governor;
        address baseToken;
        address baseTokenPriceFeed;
        uint64 supplyKink;
        uint64 supplyPerYearInterestRateSlopeLow;
        uint64 supplyPerYearInterestRateSlopeHigh;
        uint64 supplyPerYearInterestRateBase;
        uint64 borrowKink;
        uint64 borrowPerYearInterestRateSlopeLow;
        uint64 borrowPerYearInterestRateSlopeHigh;
        uint64 borrowPerYearInterestRateBase;
        uint64 storeFrontPriceFactor;
        uint104 baseBorrowMin;
        uint104 targetReserves;
        uint64 initialSupplyIndex;
        uint64 initialBorrowIndex;
    }

    struct TotalsBasic {
        uint64 baseSupplyIndex;
        uint64 baseBorrowIndex;
        uint64 trackingSupplyIndex;
        uint64 trackingBorrowIndex;
        uint104 totalSupplyBase;
        uint104 totalBorrowBase;
        uint40 lastAccrualTime;
        uint8 pauseFlags;
    }

    struct TotalsCollateral {
        uint128 totalSupplyAsset;
        uint128 _reserved;
    }

    struct UserBasic {
        int104 principal;
        uint64 baseTrackingIndex;
        uint64 baseTrackingAccrued;
        uint16 assetsIn;
        uint8 _reserved;
    }

    struct UserCollateral {
        uint128 balance;
        uint128 _reserved;
    }

    struct LiquidatorPoints {
        uint32 numAbsorbs;
        uint64 numAbsorbed;
        uint128 approxSpend;
        uint32 _reserved;
    }

    // ------------------------------------------------------------------------ events, errors
    event Supply(address indexed from, address indexed dst, uint256 amount);
    event Transfer(address indexed from, address indexed to, uint256 amount);
    event Withdraw(address indexed src, address indexed to, uint256 amount);
    event SupplyCollateral(address indexed from, address indexed dst, address indexed asset, uint256 amount);
    event TransferCollateral(address indexed from, address indexed to, address indexed asset, uint256 amount);
    event WithdrawCollateral(address indexed src, address indexed to, address indexed asset, uint256 amount);
    event AbsorbDebt(address indexed absorber, address indexed borrower, uint256 basePaidOut, uint256 usdValue);
    event AbsorbCollateral(
        address indexed absorber,
        address indexed borrower,
        address indexed asset,
        uint256 collateralAbsorbed,
        uint256 usdValue
    );
    event BuyCollateral(address indexed buyer, address indexed asset, uint256 baseAmount, uint256 collateralAmount);
    event PauseAction(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused);
    event WithdrawReserves(address indexed to, uint256 amount);

    error BadAsset();
    error BadDecimals();
    error BadDiscount();
    error BadPrice();
    error BadSeedRecord(uint256 index);
    error BorrowCFTooLarge();
    error BorrowTooSmall();
    error InsufficientReserves();
    error LiquidateCFTooLarge();
    error NoSelfTransfer();
    error NotCollateralized();
    error NotForSale();
    error NotLiquidatable();
    error Paused();
    error SeedLiquidatable(address account);
    error SupplyCapExceeded();
    error TooManyAssets();
    error TooMuchSlippage();
    error TransferInFailed();
    error TransferOutFailed();
    error Unauthorized();

    // ------------------------------------------------------------------------ constants
    uint8 internal constant MAX_ASSETS = 15;
    uint64 internal constant BASE_INDEX_SCALE = 1e15;
    uint64 internal constant FACTOR_SCALE = 1e18;
    uint64 internal constant PRICE_SCALE = 1e8;
    uint8 internal constant PRICE_FEED_DECIMALS = 8;
    uint64 internal constant SECONDS_PER_YEAR = 31_536_000;
    /// Comet keeps collateral and liquidation factors to 4 decimals.
    uint64 internal constant FACTOR_GRANULARITY = 1e14;

    uint8 internal constant PAUSE_SUPPLY_OFFSET = 0;
    uint8 internal constant PAUSE_TRANSFER_OFFSET = 1;
    uint8 internal constant PAUSE_WITHDRAW_OFFSET = 2;
    uint8 internal constant PAUSE_ABSORB_OFFSET = 3;
    uint8 internal constant PAUSE_BUY_OFFSET = 4;

    uint256 internal constant KIND_COLLATERAL = 0;
    uint256 internal constant KIND_BORROW = 1;
    uint256 internal constant KIND_SUPPLY = 2;

    // ------------------------------------------------------------------------ configuration
    address public immutable governor;
    address public immutable baseToken;
    address public immutable baseTokenPriceFeed;
    uint8 public immutable decimals;
    uint256 public immutable baseScale;
    uint256 public immutable supplyKink;
    uint256 public immutable supplyPerSecondInterestRateSlopeLow;
    uint256 public immutable supplyPerSecondInterestRateSlopeHigh;
    uint256 public immutable supplyPerSecondInterestRateBase;
    uint256 public immutable borrowKink;
    uint256 public immutable borrowPerSecondInterestRateSlopeLow;
    uint256 public immutable borrowPerSecondInterestRateSlopeHigh;
    uint256 public immutable borrowPerSecondInterestRateBase;
    uint256 public immutable storeFrontPriceFactor;
    uint256 public immutable baseBorrowMin;
    uint256 public immutable targetReserves;

    AssetInfo[] internal _assets;

    // ------------------------------------------------------------------------ state
    uint64 internal baseSupplyIndex;
    uint64 internal baseBorrowIndex;
    uint104 internal totalSupplyBase;
    uint104 internal totalBorrowBase;
    uint40 internal lastAccrualTime;
    uint8 internal pauseFlags;

    mapping(address => TotalsCollateral) public totalsCollateral;
    mapping(address => UserBasic) public userBasic;
    mapping(address => mapping(address => UserCollateral)) public userCollateral;
    mapping(address => LiquidatorPoints) public liquidatorPoints;

    constructor(Configuration memory config) {
        uint8 decimals_ = IERC20Minimal(config.baseToken).decimals();
        if (decimals_ > 18 || decimals_ < 6) revert BadDecimals();
        if (config.storeFrontPriceFactor > FACTOR_SCALE) revert BadDiscount();
        if (ICometPriceFeed(config.baseTokenPriceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();
        if (config.supplyKink > FACTOR_SCALE || config.borrowKink > FACTOR_SCALE) revert BadDiscount();
        if (config.initialSupplyIndex < BASE_INDEX_SCALE || config.initialBorrowIndex < BASE_INDEX_SCALE) {
            revert BadDiscount();
        }
        governor = config.governor;
        baseToken = config.baseToken;
        baseTokenPriceFeed = config.baseTokenPriceFeed;
        decimals = decimals_;
        baseScale = 10 ** decimals_;
        supplyKink = config.supplyKink;
        supplyPerSecondInterestRateSlopeLow = config.supplyPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
        supplyPerSecondInterestRateSlopeHigh = config.supplyPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
        supplyPerSecondInterestRateBase = config.supplyPerYearInterestRateBase / SECONDS_PER_YEAR;
        borrowKink = config.borrowKink;
        borrowPerSecondInterestRateSlopeLow = config.borrowPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
        borrowPerSecondInterestRateSlopeHigh = config.borrowPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
        borrowPerSecondInterestRateBase = config.borrowPerYearInterestRateBase / SECONDS_PER_YEAR;
        storeFrontPriceFactor = config.storeFrontPriceFactor;
        baseBorrowMin = config.baseBorrowMin;
        targetReserves = config.targetReserves;
        baseSupplyIndex = config.initialSupplyIndex;
        baseBorrowIndex = config.initialBorrowIndex;
        lastAccrualTime = uint40(block.timestamp);
    }

    modifier onlyGovernor() {
        if (msg.sender != governor) revert Unauthorized();
        _;
    }

    /// @notice Lists a collateral asset (governor only), with Comet's configuration checks.
    function addAsset(AssetConfig calldata c) external onlyGovernor {
        if (_assets.length >= MAX_ASSETS) revert TooManyAssets();
        if (c.asset == baseToken) revert BadAsset();
        for (uint256 i = 0; i < _assets.length; i++) {
            if (_assets[i].asset == c.asset) revert BadAsset();
        }
        if (ICometPriceFeed(c.priceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();
        if (IERC20Minimal(c.asset).decimals() != c.decimals || c.decimals > 18) revert BadDecimals();
        if (c.borrowCollateralFactor >= c.liquidateCollateralFactor) revert BorrowCFTooLarge();
        if (c.liquidateCollateralFactor > FACTOR_SCALE) revert LiquidateCFTooLarge();
        if (c.liquidationFactor > FACTOR_SCALE) revert BadDiscount();
        if (
            c.borrowCollateralFactor % FACTOR_GRANULARITY != 0 || c.liquidateCollateralFactor % FACTOR_GRANULARITY != 0
                || c.liquidationFactor % FACTOR_GRANULARITY != 0
        ) revert BadDiscount();
        uint64 scale = uint64(10 ** c.decimals);
        _assets.push(
            AssetInfo({
                offset: uint8(_assets.length),
                asset: c.asset,
                priceFeed: c.priceFeed,
                scale: scale,
                borrowCollateralFactor: c.borrowCollateralFactor,
                liquidateCollateralFactor: c.liquidateCollateralFactor,
                liquidationFactor: c.liquidationFactor,
                // Comet keeps whole units of the asset for the supply cap
                supplyCap: (c.supplyCap / scale) * scale
            })
        );
    }

    // ------------------------------------------------------------------------ views: assets
    function numAssets() external view returns (uint8) {
        return uint8(_assets.length);
    }

    function getAssetInfo(uint8 i) public view returns (AssetInfo memory) {
        if (i >= _assets.length) revert BadAsset();
        return _assets[i];
    }

    function getAssetInfoByAddress(address asset) public view returns (AssetInfo memory) {
        for (uint256 i = 0; i < _assets.length; i++) {
            if (_assets[i].asset == asset) return _assets[i];
        }
        revert BadAsset();
    }

    function getPrice(address priceFeed) public view returns (uint256) {
        (, int256 price,,,) = ICometPriceFeed(priceFeed).latestRoundData();
        if (price <= 0) revert BadPrice();
        return uint256(price);
    }

    function baseIndexScale() external pure returns (uint64) {
        return BASE_INDEX_SCALE;
    }

    function factorScale() external pure returns (uint64) {
        return FACTOR_SCALE;
    }

    function priceScale() external pure returns (uint64) {
        return PRICE_SCALE;
    }

    function maxAssets() external pure returns (uint8) {
        return MAX_ASSETS;
    }

    function version() external pure returns (string memory) {
        return "0";
    }

    function name() external pure returns (string memory) {
        return "Compound Devnet USDC";
    }

    function symbol() external pure returns (string memory) {
        return "cUSDCv3";
    }

    // ------------------------------------------------------------------------ views: interest
    function totalsBasic() external view returns (TotalsBasic memory) {
        return TotalsBasic({
            baseSupplyIndex: baseSupplyIndex,
            baseBorrowIndex: baseBorrowIndex,
            trackingSupplyIndex: 0,
            trackingBorrowIndex: 0,
            totalSupplyBase: totalSupplyBase,
            totalBorrowBase: totalBorrowBase,
            lastAccrualTime: lastAccrualTime,
            pauseFlags: pauseFlags
        });
    }

    function getUtilization() public view returns (uint256) {
        uint256 supplied = _presentValueSupply(baseSupplyIndex, totalSupplyBase);
        uint256 borrowed = _presentValueBorrow(baseBorrowIndex, totalBorrowBase);
        if (supplied == 0) return 0;
        return borrowed * FACTOR_SCALE / supplied;
    }

    function getSupplyRate(uint256 utilization) public view returns (uint64) {
        if (utilization <= supplyKink) {
            return _safe64(supplyPerSecondInterestRateBase + _mulFactor(supplyPerSecondInterestRateSlopeLow, utilization));
        }
        return _safe64(
            supplyPerSecondInterestRateBase + _mulFactor(supplyPerSecondInterestRateSlopeLow, supplyKink)
                + _mulFactor(supplyPerSecondInterestRateSlopeHigh, utilization - supplyKink)
        );
    }

    function getBorrowRate(uint256 utilization) public view returns (uint64) {
        if (utilization <= borrowKink) {
            return _safe64(borrowPerSecondInterestRateBase + _mulFactor(borrowPerSecondInterestRateSlopeLow, utilization));
        }
        return _safe64(
            borrowPerSecondInterestRateBase + _mulFactor(borrowPerSecondInterestRateSlopeLow, borrowKink)
                + _mulFactor(borrowPerSecondInterestRateSlopeHigh, utilization - borrowKink)
        );
    }

    function totalSupply() external view returns (uint256) {
        (uint64 supplyIndex,) = _accruedInterestIndices(block.timestamp - lastAccrualTime);
        return _presentValueSupply(supplyIndex, totalSupplyBase);
    }

    function totalBorrow() external view returns (uint256) {
        (, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - lastAccrualTime);
        return _presentValueBorrow(borrowIndex, totalBorrowBase);
    }

    function balanceOf(address account) public view returns (uint256) {
        (uint64 supplyIndex,) = _accruedInterestIndices(block.timestamp - lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal > 0 ? _presentValueSupply(supplyIndex, uint104(principal)) : 0;
    }

    function borrowBalanceOf(address account) public view returns (uint256) {
        (, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal < 0 ? _presentValueBorrow(borrowIndex, uint104(-principal)) : 0;
    }

    function collateralBalanceOf(address account, address asset) external view returns (uint128) {
        return userCollateral[account][asset].balance;
    }

    function baseTrackingAccrued(address) external pure returns (uint64) {
        return 0;
    }

    /// @notice Base token cash minus what suppliers are owed plus what borrowers owe (signed).
    function getReserves() public view returns (int256) {
        (uint64 supplyIndex, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - lastAccrualTime);
        uint256 cash = IERC20Minimal(baseToken).balanceOf(address(this));
        uint256 supplied = _presentValueSupply(supplyIndex, totalSupplyBase);
        uint256 borrowed = _presentValueBorrow(borrowIndex, totalBorrowBase);
        return int256(cash) - int256(supplied) + int256(borrowed);
    }

    /// @notice Collateral the protocol holds beyond its users' balances (absorbed, for sale).
    function getCollateralReserves(address asset) public view returns (uint256) {
        return IERC20Minimal(asset).balanceOf(address(this)) - totalsCollateral[asset].totalSupplyAsset;
    }

    // ------------------------------------------------------------------------ views: health
    function isBorrowCollateralized(address account) public view returns (bool) {
        int104 principal = userBasic[account].principal;
        if (principal >= 0) return true;
        return _liquidity(account, principal, false) >= 0;
    }

    function isLiquidatable(address account) public view returns (bool) {
        int104 principal = userBasic[account].principal;
        if (principal >= 0) return false;
        return _liquidity(account, principal, true) < 0;
    }

    /// Base balance value plus collateral value x factor, 1e8 USD, stopping once non-negative
    /// (as Comet's loop does; the sign is all that is used).
    function _liquidity(address account, int104 principal, bool liquidate) internal view returns (int256) {
        uint16 assetsIn = userBasic[account].assetsIn;
        int256 liquidity = _signedMulPrice(_presentValue(principal), getPrice(baseTokenPriceFeed), baseScale);
        for (uint8 i = 0; i < _assets.length; i++) {
            if (assetsIn & (uint16(1) << i) == 0) continue;
            if (liquidity >= 0) return liquidity;
            AssetInfo memory a = _assets[i];
            uint256 value = _mulPrice(userCollateral[account][a.asset].balance, getPrice(a.priceFeed), a.scale);
            liquidity += int256(_mulFactor(value, liquidate ? a.liquidateCollateralFactor : a.borrowCollateralFactor));
        }
        return liquidity;
    }

    /// @notice Collateral (token units) `baseAmount` of base buys at the store-front discount
    /// storeFrontPriceFactor x (1 - liquidationFactor).
    function quoteCollateral(address asset, uint256 baseAmount) public view returns (uint256) {
        AssetInfo memory a = getAssetInfoByAddress(asset);
        uint256 assetPrice = getPrice(a.priceFeed);
        uint256 discountFactor = _mulFactor(storeFrontPriceFactor, FACTOR_SCALE - a.liquidationFactor);
        uint256 assetPriceDiscounted = _mulFactor(assetPrice, FACTOR_SCALE - discountFactor);
        uint256 basePrice = getPrice(baseTokenPriceFeed);
        return basePrice * baseAmount * a.scale / assetPriceDiscounted / baseScale;
    }

    // ------------------------------------------------------------------------ pause
    function pause(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused)
        external
        onlyGovernor
    {
        pauseFlags = (_u8(supplyPaused) << PAUSE_SUPPLY_OFFSET) | (_u8(transferPaused) << PAUSE_TRANSFER_OFFSET)
            | (_u8(withdrawPaused) << PAUSE_WITHDRAW_OFFSET) | (_u8(absorbPaused) << PAUSE_ABSORB_OFFSET)
            | (_u8(buyPaused) << PAUSE_BUY_OFFSET);
        emit PauseAction(supplyPaused, transferPaused, withdrawPaused, absorbPaused, buyPaused);
    }

    function isSupplyPaused() public view returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_SUPPLY_OFFSET) != 0;
    }

    function isTransferPaused() public view returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_TRANSFER_OFFSET) != 0;
    }

    function isWithdrawPaused() public view returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_WITHDRAW_OFFSET) != 0;
    }

    function isAbsorbPaused() public view returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_ABSORB_OFFSET) != 0;
    }

    function isBuyPaused() public view returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_BUY_OFFSET) != 0;
    }

    // ------------------------------------------------------------------------ actions
    function accrueAccount(address) external {
        _accrue();
    }

    function supply(address asset, uint256 amount) external {
        _supply(msg.sender, msg.sender, asset, amount);
    }

    function supplyTo(address dst, address asset, uint256 amount) external {
        _supply(msg.sender, dst, asset, amount);
    }

    function withdraw(address asset, uint256 amount) external {
        _withdraw(msg.sender, msg.sender, asset, amount);
    }

    function withdrawTo(address to, address asset, uint256 amount) external {
        _withdraw(msg.sender, to, asset, amount);
    }

    function transfer(address dst, uint256 amount) external returns (bool) {
        _transfer(msg.sender, dst, baseToken, amount);
        return true;
    }

    function transferAsset(address dst, address asset, uint256 amount) external {
        _transfer(msg.sender, dst, asset, amount);
    }

    function _supply(address from, address dst, address asset, uint256 amount) internal {
        if (isSupplyPaused()) revert Paused();
        _transferIn(asset, from, amount);
        if (asset == baseToken) {
            _supplyBase(from, dst, amount);
        } else {
            _supplyCollateral(from, dst, asset, _safe128(amount));
        }
    }

    function _supplyBase(address from, address dst, uint256 amount) internal {
        _accrue();
        UserBasic memory user = userBasic[dst];
        int104 old = user.principal;
        int104 updated = _principalValue(_presentValue(old) + int256(amount));
        (uint104 repay, uint104 supplied) = _repayAndSupplyAmount(old, updated);
        totalSupplyBase += supplied;
        totalBorrowBase -= repay;
        userBasic[dst].principal = updated;
        emit Supply(from, dst, amount);
        if (supplied > 0) emit Transfer(address(0), dst, _presentValueSupply(baseSupplyIndex, supplied));
    }

    function _supplyCollateral(address from, address dst, address asset, uint128 amount) internal {
        AssetInfo memory a = getAssetInfoByAddress(asset);
        uint128 total = totalsCollateral[asset].totalSupplyAsset + amount;
        if (total > a.supplyCap) revert SupplyCapExceeded();
        totalsCollateral[asset].totalSupplyAsset = total;
        uint128 before = userCollateral[dst][asset].balance;
        userCollateral[dst][asset].balance = before + amount;
        _updateAssetsIn(dst, a.offset, before, before + amount);
        emit SupplyCollateral(from, dst, asset, amount);
    }

    function _withdraw(address src, address to, address asset, uint256 amount) internal {
        if (isWithdrawPaused()) revert Paused();
        if (asset == baseToken) {
            if (amount == type(uint256).max) amount = balanceOf(src);
            _withdrawBase(src, to, amount);
        } else {
            _withdrawCollateral(src, to, asset, _safe128(amount));
        }
    }

    function _withdrawBase(address src, address to, uint256 amount) internal {
        _accrue();
        int104 old = userBasic[src].principal;
        int256 balance = _presentValue(old) - int256(amount);
        int104 updated = _principalValue(balance);
        (uint104 withdrawn, uint104 borrowed) = _withdrawAndBorrowAmount(old, updated);
        totalSupplyBase -= withdrawn;
        totalBorrowBase += borrowed;
        userBasic[src].principal = updated;
        if (balance < 0) {
            if (uint256(-balance) < baseBorrowMin) revert BorrowTooSmall();
            if (!isBorrowCollateralized(src)) revert NotCollateralized();
        }
        _transferOut(baseToken, to, amount);
        emit Withdraw(src, to, amount);
        if (withdrawn > 0) emit Transfer(src, address(0), _presentValueSupply(baseSupplyIndex, withdrawn));
    }

    function _withdrawCollateral(address src, address to, address asset, uint128 amount) internal {
        AssetInfo memory a = getAssetInfoByAddress(asset);
        uint128 before = userCollateral[src][asset].balance;
        uint128 remaining = before - amount;
        totalsCollateral[asset].totalSupplyAsset -= amount;
        userCollateral[src][asset].balance = remaining;
        _updateAssetsIn(src, a.offset, before, remaining);
        if (!isBorrowCollateralized(src)) revert NotCollateralized();
        _transferOut(asset, to, amount);
        emit WithdrawCollateral(src, to, asset, amount);
    }

    function _transfer(address src, address dst, address asset, uint256 amount) internal {
        if (isTransferPaused()) revert Paused();
        if (src == dst) revert NoSelfTransfer();
        if (asset == baseToken) {
            _transferBase(src, dst, amount);
        } else {
            _transferCollateral(src, dst, asset, _safe128(amount));
        }
    }

    function _transferBase(address src, address dst, uint256 amount) internal {
        _accrue();
        int104 srcOld = userBasic[src].principal;
        int104 dstOld = userBasic[dst].principal;
        int256 srcBalance = _presentValue(srcOld) - int256(amount);
        int104 srcNew = _principalValue(srcBalance);
        int104 dstNew = _principalValue(_presentValue(dstOld) + int256(amount));
        (uint104 withdrawn, uint104 borrowed) = _withdrawAndBorrowAmount(srcOld, srcNew);
        (uint104 repay, uint104 supplied) = _repayAndSupplyAmount(dstOld, dstNew);
        totalSupplyBase = totalSupplyBase + supplied - withdrawn;
        totalBorrowBase = totalBorrowBase + borrowed - repay;
        userBasic[src].principal = srcNew;
        userBasic[dst].principal = dstNew;
        if (srcBalance < 0) {
            if (uint256(-srcBalance) < baseBorrowMin) revert BorrowTooSmall();
            if (!isBorrowCollateralized(src)) revert NotCollateralized();
        }
        if (withdrawn > 0) emit Transfer(src, address(0), _presentValueSupply(baseSupplyIndex, withdrawn));
        if (supplied > 0) emit Transfer(address(0), dst, _presentValueSupply(baseSupplyIndex, supplied));
    }

    function _transferCollateral(address src, address dst, address asset, uint128 amount) internal {
        AssetInfo memory a = getAssetInfoByAddress(asset);
        uint128 srcBefore = userCollateral[src][asset].balance;
        uint128 dstBefore = userCollateral[dst][asset].balance;
        userCollateral[src][asset].balance = srcBefore - amount;
        userCollateral[dst][asset].balance = dstBefore + amount;
        _updateAssetsIn(src, a.offset, srcBefore, srcBefore - amount);
        _updateAssetsIn(dst, a.offset, dstBefore, dstBefore + amount);
        if (!isBorrowCollateralized(src)) revert NotCollateralized();
        emit TransferCollateral(src, dst, asset, amount);
    }

    /// @notice Absorbs liquidatable accounts onto the protocol's balance sheet; the caller earns
    /// gas-accounting points, no bonus.
    function absorb(address absorber, address[] calldata accounts) external {
        if (isAbsorbPaused()) revert Paused();
        uint256 startGas = gasleft();
        _accrue();
        for (uint256 i = 0; i < accounts.length; i++) {
            _absorb(absorber, accounts[i]);
        }
        uint256 gasUsed = startGas - gasleft();
        LiquidatorPoints memory points = liquidatorPoints[absorber];
        points.numAbsorbs++;
        points.numAbsorbed += uint64(accounts.length);
        points.approxSpend += uint128(gasUsed * block.basefee);
        liquidatorPoints[absorber] = points;
    }

    function _absorb(address absorber, address account) internal {
        if (!isLiquidatable(account)) revert NotLiquidatable();
        UserBasic memory user = userBasic[account];
        int104 oldPrincipal = user.principal;
        int256 oldBalance = _presentValue(oldPrincipal);
        uint256 basePrice = getPrice(baseTokenPriceFeed);
        uint256 deltaValue = 0;
        for (uint8 i = 0; i < _assets.length; i++) {
            if (user.assetsIn & (uint16(1) << i) == 0) continue;
            AssetInfo memory a = _assets[i];
            uint128 seized = userCollateral[account][a.asset].balance;
            userCollateral[account][a.asset].balance = 0;
            totalsCollateral[a.asset].totalSupplyAsset -= seized;
            uint256 value = _mulPrice(seized, getPrice(a.priceFeed), a.scale);
            deltaValue += _mulFactor(value, a.liquidationFactor);
            emit AbsorbCollateral(absorber, account, a.asset, seized, value);
        }
        uint256 deltaBalance = deltaValue * baseScale / basePrice;
        int256 newBalance = oldBalance + int256(deltaBalance);
        // the account never ends below zero: the reserves absorb the debt that is left
        if (newBalance < 0) newBalance = 0;
        int104 newPrincipal = _principalValue(newBalance);
        userBasic[account].principal = newPrincipal;
        userBasic[account].assetsIn = 0;
        (uint104 repay, uint104 supplied) = _repayAndSupplyAmount(oldPrincipal, newPrincipal);
        totalSupplyBase += supplied;
        totalBorrowBase -= repay;
        uint256 basePaidOut = uint256(newBalance - oldBalance);
        emit AbsorbDebt(absorber, account, basePaidOut, _mulPrice(basePaidOut, basePrice, baseScale));
    }

    /// @notice Buys absorbed collateral for base at the store-front price, while the reserves
    /// are below target.
    function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external {
        if (isBuyPaused()) revert Paused();
        int256 reserves = getReserves();
        if (reserves >= 0 && uint256(reserves) >= targetReserves) revert NotForSale();
        _transferIn(baseToken, msg.sender, baseAmount);
        uint256 collateralAmount = quoteCollateral(asset, baseAmount);
        if (collateralAmount < minAmount) revert TooMuchSlippage();
        if (collateralAmount > getCollateralReserves(asset)) revert InsufficientReserves();
        _transferOut(asset, recipient, _safe128(collateralAmount));
        emit BuyCollateral(msg.sender, asset, baseAmount, collateralAmount);
    }

    function withdrawReserves(address to, uint256 amount) external onlyGovernor {
        int256 reserves = getReserves();
        if (reserves < 0 || amount > uint256(reserves)) revert InsufficientReserves();
        _transferOut(baseToken, to, amount);
        emit WithdrawReserves(to, amount);
    }

    // ------------------------------------------------------------------------ devnet seeding
    /// @notice Writes many positions at once (governor only). Records are pairs of words:
    /// `account | kind << 160 | asset offset << 168`, then the amount (token base units):
    /// kind 0 supplies collateral (the tokens are minted to this contract), 1 borrows base,
    /// 2 supplies base. Each emits the events a real market emits for the same action; base
    /// cash is left to `seedReserves`. A borrower must end at or above `baseBorrowMin` and not
    /// liquidatable.
    function seedAccounts(uint256[] calldata records) external onlyGovernor {
        uint256 n = records.length;
        if (n % 2 != 0) revert BadSeedRecord(n);
        _accrue();
        address current;
        for (uint256 i = 0; i < n; i += 2) {
            uint256 head = records[i];
            uint256 amount = records[i + 1];
            address user = address(uint160(head));
            uint256 kind = (head >> 160) & 0xFF;
            uint256 offset = (head >> 168) & 0xFF;
            if (amount == 0 || kind > KIND_SUPPLY || (kind == KIND_COLLATERAL && offset >= _assets.length)) {
                revert BadSeedRecord(i / 2);
            }
            if (user != current) {
                _checkSeeded(current);
                current = user;
            }
            if (kind == KIND_COLLATERAL) {
                address asset = _assets[offset].asset;
                IMintableERC20(asset).mint(address(this), amount);
                _supplyCollateral(user, user, asset, _safe128(amount));
            } else if (kind == KIND_SUPPLY) {
                _supplyBase(user, user, amount);
            } else {
                int104 old = userBasic[user].principal;
                int104 updated = _principalValue(_presentValue(old) - int256(amount));
                (uint104 withdrawn, uint104 borrowed) = _withdrawAndBorrowAmount(old, updated);
                totalSupplyBase -= withdrawn;
                totalBorrowBase += borrowed;
                userBasic[user].principal = updated;
                emit Withdraw(user, user, amount);
                if (withdrawn > 0) emit Transfer(user, address(0), _presentValueSupply(baseSupplyIndex, withdrawn));
            }
        }
        _checkSeeded(current);
    }

    function _checkSeeded(address user) internal view {
        if (user == address(0)) return;
        int104 principal = userBasic[user].principal;
        if (principal >= 0) return;
        if (_presentValueBorrow(baseBorrowIndex, uint104(-principal)) < baseBorrowMin) revert BorrowTooSmall();
        if (isLiquidatable(user)) revert SeedLiquidatable(user);
    }

    /// @notice Mints base tokens to, or sends them from, this contract so that `getReserves()`
    /// reads `wanted` at this block (governor only).
    function seedReserves(int256 wanted) external onlyGovernor {
        _accrue();
        int256 reserves = getReserves();
        if (reserves < wanted) {
            IMintableERC20(baseToken).mint(address(this), uint256(wanted - reserves));
        } else if (reserves > wanted) {
            _transferOut(baseToken, governor, uint256(reserves - wanted));
        }
    }

    // ------------------------------------------------------------------------ internals
    function _accruedInterestIndices(uint256 elapsed) internal view returns (uint64, uint64) {
        uint64 supplyIndex = baseSupplyIndex;
        uint64 borrowIndex = baseBorrowIndex;
        if (elapsed > 0) {
            uint256 utilization = getUtilization();
            uint256 supplyRate = getSupplyRate(utilization);
            uint256 borrowRate = getBorrowRate(utilization);
            supplyIndex += _safe64(_mulFactor(supplyIndex, supplyRate * elapsed));
            borrowIndex += _safe64(_mulFactor(borrowIndex, borrowRate * elapsed));
        }
        return (supplyIndex, borrowIndex);
    }

    function _accrue() internal {
        uint256 elapsed = block.timestamp - lastAccrualTime;
        if (elapsed > 0) {
            (baseSupplyIndex, baseBorrowIndex) = _accruedInterestIndices(elapsed);
            lastAccrualTime = uint40(block.timestamp);
        }
    }

    function _presentValueSupply(uint64 index, uint256 principal) internal pure returns (uint256) {
        return principal * index / BASE_INDEX_SCALE;
    }

    function _presentValueBorrow(uint64 index, uint256 principal) internal pure returns (uint256) {
        return principal * index / BASE_INDEX_SCALE;
    }

    function _presentValue(int104 principal) internal view returns (int256) {
        if (principal >= 0) return int256(_presentValueSupply(baseSupplyIndex, uint104(principal)));
        return -int256(_presentValueBorrow(baseBorrowIndex, uint104(-principal)));
    }

    /// Present value back to principal: supply rounded down, borrow rounded up.
    function _principalValue(int256 balance) internal view returns (int104) {
        if (balance >= 0) {
            return _signed104(uint256(balance) * BASE_INDEX_SCALE / baseSupplyIndex);
        }
        return -_signed104((uint256(-balance) * BASE_INDEX_SCALE + baseBorrowIndex - 1) / baseBorrowIndex);
    }

    function _repayAndSupplyAmount(int104 oldPrincipal, int104 newPrincipal) internal pure returns (uint104, uint104) {
        if (newPrincipal < oldPrincipal) return (0, 0);
        if (newPrincipal <= 0) return (uint104(newPrincipal - oldPrincipal), 0);
        if (oldPrincipal >= 0) return (0, uint104(newPrincipal - oldPrincipal));
        return (uint104(-oldPrincipal), uint104(newPrincipal));
    }

    function _withdrawAndBorrowAmount(int104 oldPrincipal, int104 newPrincipal)
        internal
        pure
        returns (uint104, uint104)
    {
        if (newPrincipal > oldPrincipal) return (0, 0);
        if (newPrincipal >= 0) return (uint104(oldPrincipal - newPrincipal), 0);
        if (oldPrincipal <= 0) return (0, uint104(oldPrincipal - newPrincipal));
        return (uint104(oldPrincipal), uint104(-newPrincipal));
    }

    function _updateAssetsIn(address account, uint8 offset, uint128 before, uint128 afterwards) internal {
        if (before == 0 && afterwards != 0) {
            userBasic[account].assetsIn |= uint16(1) << offset;
        } else if (before != 0 && afterwards == 0) {
            userBasic[account].assetsIn &= ~(uint16(1) << offset);
        }
    }

    function _mulFactor(uint256 n, uint256 factor) internal pure returns (uint256) {
        return n * factor / FACTOR_SCALE;
    }

    function _mulPrice(uint256 n, uint256 price, uint256 scale) internal pure returns (uint256) {
        return n * price / scale;
    }

    function _signedMulPrice(int256 n, uint256 price, uint256 scale) internal pure returns (int256) {
        return n * int256(price) / int256(scale);
    }

    function _transferIn(address asset, address from, uint256 amount) internal {
        if (!IERC20Minimal(asset).transferFrom(from, address(this), amount)) revert TransferInFailed();
    }

    function _transferOut(address asset, address to, uint256 amount) internal {
        if (!IERC20Minimal(asset).transfer(to, amount)) revert TransferOutFailed();
    }

    function _safe64(uint256 n) internal pure returns (uint64) {
        if (n > type(uint64).max) revert InsufficientReserves();
        return uint64(n);
    }

    function _safe128(uint256 n) internal pure returns (uint128) {
        if (n > type(uint128).max) revert InsufficientReserves();
        return uint128(n);
    }

    function _signed104(uint256 n) internal pure returns (int104) {
        if (n > uint256(uint104(type(int104).max))) revert InsufficientReserves();
        return int104(int256(n));
    }

    function _u8(bool x) internal pure returns (uint8) {
        return x ? 1 : 0;
    }
}
