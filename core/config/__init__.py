"""Configuration: one TOML file, ``SEALMAIL_*`` environment overrides, validated and frozen."""
