"""Protocol adapters: one module per protocol, registered by name.

``keeper.adapters.base`` defines the interface (``ProtocolAdapter``), its value types and
the registry (``get_adapter("aave-v3")``); ``keeper.adapters.aave_v3`` implements Aave V3,
``keeper.adapters.compound_v3`` Compound V3 (Comet);
``abi`` and ``multicall`` are the shared call encoding and Multicall3 batching.
"""
