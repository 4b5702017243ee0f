// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Minimal} from "./Interfaces.sol";

/// @title UniswapV3Pool (devnet)
/// @notice A minimal concentrated-liquidity pool with Uniswap V3's external view interface and
/// storage semantics (Uniswap/v3-core IUniswapV3PoolState / IUniswapV3PoolImmutables):
/// `slot0`, `liquidity`, `tickSpacing`, `fee`, `token0`, `token1`, `tickBitmap(int16)` (bit
/// `compressed % 256` of word `compressed >> 8`, compressed = tick / tickSpacing) and
/// `ticks(int24)` with the real 8-field tuple (liquidityGross, liquidityNet, two fee growths,
/// tickCumulativeOutside, secondsPerLiquidityOutsideX128, secondsOutside, initialized).
/// Swaps are exact input and follow V3's integer math: Q64.96 sqrt prices, sqrt(1.0001)^tick
/// per tick, per-range steps to the next initialised tick, the fee taken from the input in
/// pips, amounts rounded as V3 rounds them (input up, output down). Not kept: fee growth,
/// oracle observations, protocol fees, flash loans and callbacks (positions are minted and
/// swaps paid with `transferFrom`). Written for the devnet, not copied from v3-core.
contract UniswapV3Pool {
    struct Slot0 {
        uint160 sqrtPriceX96;
        int24 tick;
        uint16 observationIndex;
        uint16 observationCardinality;
        uint16 observationCardinalityNext;
        uint8 feeProtocol;
        bool unlocked;
    }

    struct TickInfo {
        uint128 liquidityGross;
        int128 liquidityNet;
        uint256 feeGrowthOutside0X128;
        uint256 feeGrowthOutside1X128;
        int56 tickCumulativeOutside;
        uint160 secondsPerLiquidityOutsideX128;
        uint32 secondsOutside;
        bool initialized;
    }

    int24 internal constant MIN_TICK = -887272;
    int24 internal constant MAX_TICK = 887272;
    uint256 internal constant Q96 = 1 << 96;

    address public immutable factory;
    address public immutable token0;
    address public immutable token1;
    uint24 public immutable fee;
    int24 public immutable tickSpacing;

    Slot0 public slot0;
    uint128 public liquidity;
    mapping(int24 => TickInfo) public ticks;
    mapping(int16 => uint256) public tickBitmap;
    /// Initialised ticks in ascending order (the swap's way to the next one).
    int24[] internal initialized;

    event Initialize(uint160 sqrtPriceX96, int24 tick);
    event Mint(address indexed owner, int24 tickLower, int24 tickUpper, uint128 amount, uint256 amount0, uint256 amount1);
    event Swap(
        address indexed sender,
        address indexed recipient,
        int256 amount0,
        int256 amount1,
        uint160 sqrtPriceX96,
        uint128 liquidity,
        int24 tick
    );

    error AlreadyInitialized();
    error NotInitialized();
    error IdenticalAddresses();
    error BadTicks();
    error ZeroAmount();
    error TransferFailed();
    error Locked();
    error MulDivOverflow();

    constructor(address tokenA, address tokenB, uint24 fee_, int24 tickSpacing_) {
        if (tokenA == tokenB) revert IdenticalAddresses();
        (token0, token1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        fee = fee_;
        tickSpacing = tickSpacing_;
        factory = msg.sender;
    }

    // -- math ---------------------------------------------------------------------------

    /// floor(a * b / c) with a 512-bit intermediate product (long division of the high word).
    function _mulDiv(uint256 a, uint256 b, uint256 c) internal pure returns (uint256 q) {
        uint256 lo;
        uint256 hi;
        unchecked {
            lo = a * b;
            uint256 mm = mulmod(a, b, type(uint256).max);
            hi = mm - lo - (mm < lo ? 1 : 0);
        }
        if (hi == 0) return lo / c;
        if (hi >= c) revert MulDivOverflow();
        uint256 r = hi;
        unchecked {
            for (uint256 i = 256; i > 0; i--) {
                bool carry = (r >> 255) != 0;
                r = (r << 1) | ((lo >> (i - 1)) & 1);
                if (carry || r >= c) {
                    r -= c;
                    q |= uint256(1) << (i - 1);
                }
            }
        }
    }

    function _mulDivUp(uint256 a, uint256 b, uint256 c) internal pure returns (uint256 q) {
        q = _mulDiv(a, b, c);
        if (mulmod(a, b, c) > 0) q += 1;
    }

    function _divUp(uint256 a, uint256 b) internal pure returns (uint256) {
        return a / b + (a % b > 0 ? 1 : 0);
    }

    /// sqrt(1.0001)^tick as Q64.96: the product of 2^128 / sqrt(1.0001)^(2^i) (Q128) over the
    /// set bits i of |tick|, inverted for a positive tick, rounded up to Q96.
    function sqrtRatioAtTick(int24 tick) public pure returns (uint160) {
        uint256 absTick = tick < 0 ? uint256(-int256(tick)) : uint256(int256(tick));
        require(absTick <= uint256(int256(MAX_TICK)), "T");
        uint256 ratio = absTick & 0x1 != 0 ? 0xfffcb933bd6fad37aa2d162d1a594001 : 1 << 128;
        if (absTick & 0x2 != 0) ratio = (ratio * 0xfff97272373d413259a46990580e213a) >> 128;
        if (absTick & 0x4 != 0) ratio = (ratio * 0xfff2e50f5f656932ef12357cf3c7fdcc) >> 128;
        if (absTick & 0x8 != 0) ratio = (ratio * 0xffe5caca7e10e4e61c3624eaa0941cd0) >> 128;
        if (absTick & 0x10 != 0) ratio = (ratio * 0xffcb9843d60f6159c9db58835c926644) >> 128;
        if (absTick & 0x20 != 0) ratio = (ratio * 0xff973b41fa98c081472e6896dfb254c0) >> 128;
        if (absTick & 0x40 != 0) ratio = (ratio * 0xff2ea16466c96a3843ec78b326b52861) >> 128;
        if (absTick & 0x80 != 0) ratio = (ratio * 0xfe5dee046a99a2a811c461f1969c3053) >> 128;
        if (absTick & 0x100 != 0) ratio = (ratio * 0xfcbe86c7900a88aedcffc83b479aa3a4) >> 128;
        if (absTick & 0x200 != 0) ratio = (ratio * 0xf987a7253ac413176f2b074cf7815e54) >> 128;
        if (absTick & 0x400 != 0) ratio = (ratio * 0xf3392b0822b70005940c7a398e4b70f3) >> 128;
        if (absTick & 0x800 != 0) ratio = (ratio * 0xe7159475a2c29b7443b29c7fa6e889d9) >> 128;
        if (absTick & 0x1000 != 0) ratio = (ratio * 0xd097f3bdfd2022b8845ad8f792aa5825) >> 128;
        if (absTick & 0x2000 != 0) ratio = (ratio * 0xa9f746462d870fdf8a65dc1f90e061e5) >> 128;
        if (absTick & 0x4000 != 0) ratio = (ratio * 0x70d869a156d2a1b890bb3df62baf32f7) >> 128;
        if (absTick & 0x8000 != 0) ratio = (ratio * 0x31be135f97d08fd981231505542fcfa6) >> 128;
        if (absTick & 0x10000 != 0) ratio = (ratio * 0x9aa508b5b7a84e1c677de54f3e99bc9) >> 128;
        if (absTick & 0x20000 != 0) ratio = (ratio * 0x5d6af8dedb81196699c329225ee604) >> 128;
        if (absTick & 0x40000 != 0) ratio = (ratio * 0x2216e584f5fa1ea926041bedfe98) >> 128;
        if (absTick & 0x80000 != 0) ratio = (ratio * 0x48a170391f7dc42444e8fa2) >> 128;
        if (tick > 0) ratio = type(uint256).max / ratio;
        return uint160((ratio >> 32) + (ratio % (1 << 32) == 0 ? 0 : 1));
    }

    /// The largest tick in [lo, hi] whose sqrt ratio is <= sqrtPriceX96 (binary search).
    function _tickAt(uint160 sqrtPriceX96, int24 lo, int24 hi) internal pure returns (int24) {
        while (lo < hi) {
            int24 mid = int24((int256(lo) + int256(hi) + 1) >> 1);
            if (sqrtRatioAtTick(mid) <= sqrtPriceX96) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    function _amount0Delta(uint160 a, uint160 b, uint128 liq, bool up) internal pure returns (uint256) {
        if (a > b) (a, b) = (b, a);
        uint256 n1 = uint256(liq) << 96;
        uint256 n2 = b - a;
        return up ? _divUp(_mulDivUp(n1, n2, b), a) : _mulDiv(n1, n2, b) / a;
    }

    function _amount1Delta(uint160 a, uint160 b, uint128 liq, bool up) internal pure returns (uint256) {
        if (a > b) (a, b) = (b, a);
        return up ? _mulDivUp(liq, b - a, Q96) : _mulDiv(liq, b - a, Q96);
    }

    /// The sqrt price after adding `amount` of token0 (price falls), rounded up.
    function _nextFromAmount0(uint160 p, uint128 liq, uint256 amount) internal pure returns (uint160) {
        if (amount == 0) return p;
        uint256 n1 = uint256(liq) << 96;
        unchecked {
            uint256 product = amount * p;
            if (product / amount == p) {
                uint256 denominator = n1 + product;
                if (denominator >= n1) return uint160(_mulDivUp(n1, p, denominator));
            }
        }
        return uint160(_divUp(n1, n1 / p + amount));
    }

    /// The sqrt price after adding `amount` of token1 (price rises), rounded down.
    function _nextFromAmount1(uint160 p, uint128 liq, uint256 amount) internal pure returns (uint160) {
        uint256 quotient = amount <= type(uint160).max ? (amount << 96) / liq : _mulDiv(amount, Q96, liq);
        return uint160(uint256(p) + quotient);
    }

    // -- state ----------------------------------------------------------------------------

    function initialize(uint160 sqrtPriceX96) external {
        if (slot0.sqrtPriceX96 != 0) revert AlreadyInitialized();
        int24 tick = _tickAt(sqrtPriceX96, MIN_TICK, MAX_TICK);
        slot0 = Slot0(sqrtPriceX96, tick, 0, 1, 1, 0, true);
        emit Initialize(sqrtPriceX96, tick);
    }

    function _flip(int24 tick) internal {
        int24 compressed = tick / tickSpacing;
        tickBitmap[int16(compressed >> 8)] ^= uint256(1) << uint8(uint24(compressed % 256));
    }

    function _update(int24 tick, int128 delta, uint128 amount) internal {
        TickInfo storage info = ticks[tick];
        if (!info.initialized) {
            info.initialized = true;
            _flip(tick);
            uint256 n = initialized.length;
            initialized.push(tick);
            while (n > 0 && initialized[n - 1] > tick) {
                initialized[n] = initialized[n - 1];
                n--;
            }
            initialized[n] = tick;
        }
        info.liquidityGross += amount;
        info.liquidityNet += delta;
    }

    /// Add `amount` of liquidity on [tickLower, tickUpper) for `owner`, paid by the caller.
    function mint(address owner, int24 tickLower, int24 tickUpper, uint128 amount)
        external
        returns (uint256 amount0, uint256 amount1)
    {
        Slot0 memory s = slot0;
        if (s.sqrtPriceX96 == 0) revert NotInitialized();
        if (
            tickLower >= tickUpper || tickLower < MIN_TICK || tickUpper > MAX_TICK
                || tickLower % tickSpacing != 0 || tickUpper % tickSpacing != 0
        ) revert BadTicks();
        if (amount == 0) revert ZeroAmount();
        _update(tickLower, int128(amount), amount);
        _update(tickUpper, -int128(amount), amount);
        uint160 a = sqrtRatioAtTick(tickLower);
        uint160 b = sqrtRatioAtTick(tickUpper);
        if (s.tick < tickLower) {
            amount0 = _amount0Delta(a, b, amount, true);
        } else if (s.tick < tickUpper) {
            amount0 = _amount0Delta(s.sqrtPriceX96, b, amount, true);
            amount1 = _amount1Delta(a, s.sqrtPriceX96, amount, true);
            liquidity += amount;
        } else {
            amount1 = _amount1Delta(a, b, amount, true);
        }
        if (amount0 > 0) _pull(token0, amount0);
        if (amount1 > 0) _pull(token1, amount1);
        emit Mint(owner, tickLower, tickUpper, amount, amount0, amount1);
    }

    function _pull(address token, uint256 amount) internal {
        if (!IERC20Minimal(token).transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
    }

    // -- swaps ----------------------------------------------------------------------------

    struct Walk {
        uint160 sqrtPriceX96;
        int24 tick;
        uint128 liquidity;
        uint256 amountIn;
        uint256 amountOut;
    }

    /// An exact-input swap of `amountIn` computed on the current state: the state it ends in
    /// and the amounts (input used, fee included; output). Stops where the liquidity ends.
    function _walk(bool zeroForOne, uint256 amountIn) internal view returns (Walk memory w) {
        Slot0 memory s = slot0;
        if (s.sqrtPriceX96 == 0) revert NotInitialized();
        w.sqrtPriceX96 = s.sqrtPriceX96;
        w.tick = s.tick;
        w.liquidity = liquidity;
        uint256 remaining = amountIn;
        uint256 n = initialized.length;
        // index of the next initialised tick in the swap's direction
        uint256 k = 0;
        while (k < n && initialized[k] <= w.tick) k++;
        // zeroForOne: the next is initialized[k - 1] (the largest <= tick); else initialized[k]
        while (remaining > 0) {
            bool have = zeroForOne ? k > 0 : k < n;
            if (!have) break; // no liquidity beyond: the rest of the input is not used
            int24 nextTick = zeroForOne ? initialized[k - 1] : initialized[k];
            uint160 target = sqrtRatioAtTick(nextTick);
            uint256 lessFee = _mulDiv(remaining, 1e6 - fee, 1e6);
            uint256 stepIn;
            uint256 stepFee;
            uint160 next;
            if (w.liquidity == 0) {
                next = target; // nothing to trade across an empty range
            } else {
                stepIn = zeroForOne
                    ? _amount0Delta(target, w.sqrtPriceX96, w.liquidity, true)
                    : _amount1Delta(w.sqrtPriceX96, target, w.liquidity, true);
                if (lessFee >= stepIn) {
                    next = target;
                    stepFee = _mulDivUp(stepIn, fee, 1e6 - fee);
                } else {
                    next = zeroForOne
                        ? _nextFromAmount0(w.sqrtPriceX96, w.liquidity, lessFee)
                        : _nextFromAmount1(w.sqrtPriceX96, w.liquidity, lessFee);
                    stepIn = zeroForOne
                        ? _amount0Delta(next, w.sqrtPriceX96, w.liquidity, true)
                        : _amount1Delta(w.sqrtPriceX96, next, w.liquidity, true);
                    stepFee = remaining - stepIn;
                }
                w.amountOut += zeroForOne
                    ? _amount1Delta(next, w.sqrtPriceX96, w.liquidity, false)
                    : _amount0Delta(w.sqrtPriceX96, next, w.liquidity, false);
            }
            remaining -= stepIn + stepFee;
            w.amountIn += stepIn + stepFee;
            if (next == target) {
                // cross the tick
                int128 net = ticks[nextTick].liquidityNet;
                if (zeroForOne) {
                    w.liquidity = uint128(int128(w.liquidity) - net);
                    w.tick = nextTick - 1;
                    k--;
                } else {
                    w.liquidity = uint128(int128(w.liquidity) + net);
                    w.tick = nextTick;
                    k++;
                }
                w.sqrtPriceX96 = next;
            } else {
                w.sqrtPriceX96 = next;
                int24 lo = zeroForOne ? nextTick : w.tick;
                int24 hi = zeroForOne ? w.tick : nextTick - 1;
                w.tick = _tickAt(next, lo, hi);
            }
        }
    }

    /// Output of an exact-input swap of `amountIn` on the current state (what `swap` pays).
    function quoteExactInput(bool zeroForOne, uint256 amountIn)
        external
        view
        returns (uint256 amountOut, uint256 amountInUsed)
    {
        Walk memory w = _walk(zeroForOne, amountIn);
        return (w.amountOut, w.amountIn);
    }

    /// Exact-input swap (V3's signature; only `amountSpecified > 0`, no price limit, no
    /// callback): the caller pays the input used with `transferFrom`, `recipient` gets the
    /// output. Returns the pool's balance changes as V3 does (input positive, output negative).
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160, bytes calldata)
        external
        returns (int256 amount0, int256 amount1)
    {
        if (!slot0.unlocked) revert Locked();
        if (amountSpecified <= 0) revert ZeroAmount();
        slot0.unlocked = false;
        Walk memory w = _walk(zeroForOne, uint256(amountSpecified));
        slot0.sqrtPriceX96 = w.sqrtPriceX96;
        slot0.tick = w.tick;
        liquidity = w.liquidity;
        (address tokenIn, address tokenOut) = zeroForOne ? (token0, token1) : (token1, token0);
        _pull(tokenIn, w.amountIn);
        if (!IERC20Minimal(tokenOut).transfer(recipient, w.amountOut)) revert TransferFailed();
        (amount0, amount1) = zeroForOne
            ? (int256(w.amountIn), -int256(w.amountOut))
            : (-int256(w.amountOut), int256(w.amountIn));
        slot0.unlocked = true;
        emit Swap(msg.sender, recipient, amount0, amount1, w.sqrtPriceX96, w.liquidity, w.tick);
    }
}
