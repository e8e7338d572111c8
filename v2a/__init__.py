"""v2a: vision-to-audio generation with the V2A-Mapper method (Wang et al., AAAI 2024)."""

__version__ = "0.1.0"
