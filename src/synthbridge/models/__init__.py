"""Stage: models. `create_model(name, num_classes, ...)`: a timm model with a new head on pretrained features."""

from synthbridge.models.compile import check_compile, compile_denoiser, compile_errors, compile_model
from synthbridge.models.factory import (
                                       LOCAL_WEIGHTS,
                                       LocalWeights,
                                       convolutional,
                                       create_model,
                                       data_config,
                                       input_size,
                                       load_weights,
                                       meta_model,
                                       source_classes,
                                       weights_mib,
)

__all__ = ["LOCAL_WEIGHTS", "LocalWeights", "check_compile", "compile_denoiser", "compile_errors", "compile_model",
           "convolutional", "create_model", "data_config", "input_size", "load_weights", "meta_model", "source_classes",
           "weights_mib"]
