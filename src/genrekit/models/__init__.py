"""Genre models: the common interface and registry (``base``), the safe model-file format
(``modelfile``), the built-in default model over pretrained backbones (``default``) and the
notebook's trainable FNN/CNN (``notebook``)."""
