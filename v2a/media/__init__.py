"""Media in and out: decoders (`v2a.media.decoders`), frame/audio reading of one clip (`clips`), resampling and muxing.

`from v2a.media import read_clip` reads a video or an image into frames plus a mono or multi-channel waveform.
"""

from v2a.media.clips import (CLAP_SECONDS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, DecodedClip, MediaError, is_image,
                             read_clip, read_image, read_video)

__all__ = ["CLAP_SECONDS", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "DecodedClip", "MediaError", "is_image",
           "read_clip", "read_image", "read_video"]
