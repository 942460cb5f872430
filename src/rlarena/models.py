"""RLlib's model names, for porting custom models with only their imports changed:

    # RLlib: from ray.rllib.models import ModelCatalog
    #        from ray.rllib.models.torch.torch_modelv2 import TorchModelV2
    #        from ray.rllib.models.torch.fcnet import FullyConnectedNetwork as TorchFC
    #        from ray.rllib.models.torch.recurrent_net import RecurrentNetwork as TorchRNN
    #        from ray.rllib.policy.rnn_sequencing import add_time_dimension
    #        from ray.rllib.models.modelv2 import ModelV2
    #        from ray.rllib.utils.annotations import override
    #        from ray.rllib.utils.torch_utils import FLOAT_MIN
    from rlarena.models import FLOAT_MIN, ModelCatalog, ModelV2, TorchFC, TorchModelV2, TorchRNN, add_time_dimension, override

The protocol (what a model receives and returns) is in rlarena.nn.custom.
"""

from rlarena.nn.custom import (
    FLOAT_MAX,
    FLOAT_MIN,
    FullyConnectedNetwork,
    ModelCatalog,
    ModelV2,
    RecurrentNetwork,
    TorchFC,
    TorchModelV2,
    TorchRNN,
    add_time_dimension,
    override,
)

__all__ = [
    "FLOAT_MAX",
    "FLOAT_MIN",
    "FullyConnectedNetwork",
    "ModelCatalog",
    "ModelV2",
    "RecurrentNetwork",
    "TorchFC",
    "TorchModelV2",
    "TorchRNN",
    "add_time_dimension",
    "override",
]
