"""RLlib's model names, for porting custom models with only their imports changed:

    # RLlib: from ray.rllib.models import ModelCatalog
    #        from ray.rllib.models.torch.torch_modelv2 import TorchModelV2
    #        from ray.rllib.models.torch.fcnet import FullyConnectedNetwork as TorchFC
    #        from ray.rllib.utils.torch_utils import FLOAT_MIN
    from rlarena.models import FLOAT_MIN, ModelCatalog, TorchFC, TorchModelV2

The protocol (what a model receives and returns) is in rlarena.nn.custom.
"""

from rlarena.nn.custom import FLOAT_MAX, FLOAT_MIN, FullyConnectedNetwork, ModelCatalog, TorchFC, TorchModelV2

__all__ = ["FLOAT_MAX", "FLOAT_MIN", "FullyConnectedNetwork", "ModelCatalog", "TorchFC", "TorchModelV2"]
