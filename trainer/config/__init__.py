"""Configuration: ``schema`` (TrainConfig, loading), ``sections``, ``fields`` (the declared fields walked), ``checks``
(check_config), ``help`` (the keys for --help), ``yaml_file``."""
