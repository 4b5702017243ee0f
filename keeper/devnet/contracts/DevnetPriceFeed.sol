// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title DevnetPriceFeed
/// @notice A Chainlink AggregatorV3-compatible USD feed whose answer the devnet admin sets.
/// Every `setAnswer` starts a new round stamped with the block's timestamp.
contract DevnetPriceFeed {
    address public owner;
    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;

    uint80 internal _roundId;
    int256 internal _answer;
    uint256 internal _updatedAt;

    /// Chainlink's AggregatorInterface event.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    error NotOwner(address caller);
    error NoDataPresent();

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
        owner = msg.sender;
        decimals = decimals_;
        description = description_;
        _setAnswer(initialAnswer);
    }

    /// @notice Sets the feed's answer (8 decimals for USD feeds) and starts a new round.
    function setAnswer(int256 answer) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _setAnswer(answer);
    }

    function latestRoundData()
        external
        view
        returns (
            uint80 roundId,
            int256 answer,
            uint256 startedAt,
            uint256 updatedAt,
            uint80 answeredInRound
        )
    {
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }

    /// Only the latest round is kept; older rounds answer NoDataPresent like a pruned feed.
    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80, int256, uint256, uint256, uint80)
    {
        if (roundId_ != _roundId) revert NoDataPresent();
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }

    function latestAnswer() external view returns (int256) {
        return _answer;
    }

    function latestTimestamp() external view returns (uint256) {
        return _updatedAt;
    }

    function latestRound() external view returns (uint256) {
        return _roundId;
    }

    function _setAnswer(int256 answer) internal {
        unchecked {
            _roundId += 1;
        }
        _answer = answer;
        _updatedAt = block.timestamp;
        emit AnswerUpdated(answer, _roundId, block.timestamp);
    }
}
