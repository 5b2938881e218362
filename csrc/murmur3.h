/*
 * MurmurHash3, x64 128-bit variant (Austin Appleby's public-domain
 * algorithm), written for squidguard-bloom.
 *
 * The result equals Python's mmh3.hash64(key, seed, signed=False):
 * out[0] is the low 64 bits of the 128-bit digest, out[1] the high.
 * Input bytes are read little-endian whatever the host, so a filter file
 * answers the same on every platform.
 */
#ifndef SGB_MURMUR3_H
#define SGB_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

void sgb_murmur3_128(const void *key, size_t len, uint32_t seed, uint64_t out[2]);

#endif
