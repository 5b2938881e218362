/*
 * listindex: lookups in a compiled blacklist (a LIST.sgb file), memory-mapped.
 *
 * The file is written by squidguard_bloom/lists/compiled.py; this code only
 * reads it.  Layout, all integers little-endian:
 *
 *   header (64 bytes)  magic "SGBLIST\x1a", u32 version, u32 kind,
 *                      u64 text size, u64 text mtime (ns), u64 text hash,
 *                      u64 nslots (a power of two), u64 nkeys, u32 seed, u32 0
 *   slots              nslots x { u64 hash, u64 record offset (0 = empty) }
 *   records            domain list: { u32 keylen, u32 redirlen, key, redirect }
 *                      url list:    { u32 hostlen, u32 count, host,
 *                                     count x { u32 keylen, u32 redirlen, key, redirect } }
 *
 * hash = low 64 bits of MurmurHash3 x64-128 (seed from the header) of the key;
 * open addressing with linear probing.  Every offset read from the file is
 * checked against its size, so a damaged file gives "not found", never a
 * read out of bounds.  Nothing here allocates, writes to stdout or exits.
 */
#ifndef SGB_LISTINDEX_H
#define SGB_LISTINDEX_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin */
#define SGB_LIST_HEADER 64

/* Offset of the record whose key is exactly key[0..len), or -1. */
int64_t sgb_list_find(const uint8_t *base, uint64_t size, const char *key, size_t len);

/* Offset of the domain record for host or its nearest listed parent domain
 * (host itself first, then the part after each '.'), or -1. */
int64_t sgb_domain_find(const uint8_t *base, uint64_t size, const char *host, size_t len);

/* Offset of the first entry (in the url record of s's host, the text before
 * the first '/') that is a prefix of s, or -1. */
int64_t sgb_url_find(const uint8_t *base, uint64_t size, const char *s, size_t len);
/* cdef-end */

#endif
