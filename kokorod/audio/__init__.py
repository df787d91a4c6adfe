"""Audio between the speech pipeline and the wire: sample rate conversion,
wire formats, WAV files. (Chunk seams are part of rendering: kokorod.speech.seams.)"""

from kokorod.audio.formats import FORMATS, bytes_per_sample, decode_pcm, encode_pcm
from kokorod.audio.resample import StreamResampler, rescale_offset, resample_oneshot
from kokorod.audio.wav import read_wav, write_wav

__all__ = [
    "FORMATS",
    "StreamResampler",
    "bytes_per_sample",
    "decode_pcm",
    "encode_pcm",
    "read_wav",
    "rescale_offset",
    "resample_oneshot",
    "write_wav",
]
