"""Pretrained audio backbones: networks trained elsewhere whose outputs the genre heads read.

Each backbone module says where its weights come from (with their hash and licence), which front
end it needs, and what it gives per window. Weights are never part of this repository: they are
read from their published sources and converted into the user cache on first use.
"""
