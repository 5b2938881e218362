/*
 * listindex: lookups in a compiled blacklist (a LIST.sgb file), memory-mapped.
 *
 * The file is written by squidguard_bloom/core/lists/writer.py; this code only
 * reads it.  Layout (format version 5; version 4 had the same layout, but
 * stored IDN entries as written, not in punycode), all integers little-endian:
 *
 *   header (64 bytes)  magic "SGBLIST\x1a", u32 version, u32 kind,
 *                      u64 text size, u64 text mtime (ns), u64 text hash,
 *                      u64 file size, u32 nslots (a multiple of 16, > 0),
 *                      u32 nkeys, u32 seed, u32 nsuffixes (<= 255)
 *   tags               nslots x u16: 0 = empty slot, else a 16-bit tag of
 *                      the key's hash (never 0)
 *   blocks             nslots / 16 x u32: file offset of the first record
 *                      of the slots 16*b .. 16*b+15
 *   suffixes           nsuffixes x 16 bytes: u8 length (1..15), the suffix
 *                      (a key's last label, e.g. "com"), zero padding
 *   records            one per occupied slot, in slot order, each
 *                        varint (keylen << 2 | has_suffix << 1 | has_value),
 *                        u8 suffix index (only when has_suffix),
 *                        varint valuelen (only when has_value), key, value
 *                      with has_suffix, the record's key is the stored
 *                      key, a ".", and the suffix ("example" and "com");
 *                      domain list: the value is the entry's redirect;
 *                      url list: the key is a host, the value its entries,
 *                      each a record of the same shape without a suffix
 *                      (key: the url entry after its host, e.g. "/ads" of
 *                      "example.com/ads"; value: its redirect), in byte
 *                      order of their keys
 *
 * varint: unsigned LEB128 (7 bits a byte, low first, high bit = more), at
 * most 5 bytes.  hash = low 64 bits of MurmurHash3 x64-128 (seed from the
 * header) of the key; home slot = (hash >> 32) * nslots >> 32, tag = hash &
 * 0xffff (0 becomes 1); open addressing with linear probing, wrapping at
 * nslots.  A slot's record is found by skipping the records of the occupied
 * slots before it in its block of 16.  Every offset read from the file is
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

/* For C callers: where the stored key (without the suffix, if the record
 * has one; for a url entry, the part after the host) and the value (a
 * redirect, possibly empty) of the record at off lie, off being what one of
 * the finders returned.  Returns 0, or -1 when the record does not fit in
 * the file. */
int sgb_record_parts(const uint8_t *base, uint64_t size, uint64_t off, uint64_t *key,
                     uint32_t *keylen, uint64_t *value, uint32_t *valuelen);

#endif
