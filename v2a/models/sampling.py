"""AudioLDM's sampling defaults, as its own `text_to_audio` uses them (github.com/haoheliu/AudioLDM,
`audioldm/pipeline.py`: ddim_steps=200, guidance_scale=2.5, duration=10).

They belong to the generator (`AudioLDMGenerator.generate` takes them as its keyword defaults); the typed
configuration's `generate` section reads them from here. A module of constants only, so the
configuration reads them without importing torch.
"""

DEFAULT_STEPS = 200
DEFAULT_GUIDANCE_SCALE = 2.5
DEFAULT_SECONDS = 10.0
DEFAULT_SCHEDULER = "ddim"
