"""The model core: rectified-flow math (:mod:`.flow`), Kontext token plumbing around diffusers'
``FluxTransformer2DModel`` / ``AutoencoderKL`` (:mod:`.modeling`), the task prompt and its cached
embeddings (:mod:`.prompts`) and the base model's parts (:mod:`.base_model`).

Imports only ``tasks`` (task encodings) and third-party libraries; everything else builds on it."""
