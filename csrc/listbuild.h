/*
 * listbuild: the per-entry work of compiling a blacklist into a LIST.sgb
 * file (layout in listindex.h), in bounded pieces.
 *
 * squidguard_bloom/core/lists/writer.py reads the text list, puts each entry in
 * its stored form, and drives these functions over "lines": "key" or
 * "key\tvalue", each ending in '\n' (a key holds no '\t' or '\n'; the
 * value, a redirect, no '\n').  The writer does all file I/O; nothing here
 * reads or writes files, prints or exits.
 *
 * The group of a line is its key (domain list) or the part of its key
 * before the first '/' (url list: the host).  Each group becomes one record
 * of the file.  Lines are put in "record order": by the 64-bit hash of
 * their group (the hash the table uses, so this is the order of home
 * slots), then the group's length, then the key's bytes (shorter first on
 * a common prefix).  Equal keys keep the last line given (later list lines
 * win, as in squidGuard).
 *
 * Steps: sgb_build_split deals the lines of a block of the text out into
 * parts, each a range of hashes, so that every part can be sorted on its
 * own and the parts follow each other in record order; sgb_build_sort
 * sorts one part and lists the last labels that could become suffixes;
 * sgb_build_records encodes a sorted part as records; sgb_build_place
 * and sgb_build_fill place all records in the table.
 */
#ifndef SGB_LISTBUILD_H
#define SGB_LISTBUILD_H

#include <stdint.h>

/* cdef-begin */
/* Whether every line of buf[0..len) (which ends in '\n') is stored as it
 * is once lower-cased, so the text reader need not see it: printable ASCII
 * without blanks, not starting with '#', '+', '-' or '.', not ending in '.'
 * and, for a url list (url != 0), without ':', '@' or "./".  Empty lines
 * are fine (the other functions skip them). */
int sgb_build_plain(const char *buf, uint64_t len, int url);

/* Copy the non-empty lines of buf[0..len) to out (len bytes), grouped by
 * part, in their order within each part: a line goes to part
 * ((hash >> 32) * nparts) >> 32 of its group.  sizes[p] gets the bytes of
 * part p (nparts >= 1); at (nparts) is scratch.  Returns the bytes written
 * to out. */
uint64_t sgb_build_split(const char *buf, uint64_t len, int url, uint32_t seed, uint32_t nparts,
                         char *out, uint64_t *sizes, uint64_t *at);

/* Sort the lines of buf[0..len) in record order, keeping the last of equal
 * keys, into out (len bytes).  labels (len bytes) gets lines "LABEL\tN":
 * how many groups end in each last label that could be a suffix (the group
 * has a '.' after its first byte, and 1 to 15 bytes follow the last '.');
 * a label may have several lines, to be added up.  *labels_len gets their
 * length, *groups the number of groups.  Returns the bytes written to out,
 * or -1 when memory runs out. */
int64_t sgb_build_sort(const char *buf, uint64_t len, int url, uint32_t seed, char *out,
                       char *labels, uint64_t *labels_len, uint64_t *groups);

/* Encode the lines of buf[0..len), in record order with unique keys (as
 * sgb_build_sort leaves them), as records (listindex.h) into out
 * (outcap bytes), using the nsuffixes suffixes laid out as in the file.
 * For record i: hi[i] = hash >> 32, tags[i] its tag, lens[i] its length
 * (the arrays hold maxrecs).  *outlen gets the bytes written, *entries the
 * number of lines.  Returns the number of records, or -1 when out or the
 * arrays are too small, or a record is longer than 2^30 bytes. */
int64_t sgb_build_records(const char *buf, uint64_t len, int url, uint32_t seed,
                          const uint8_t *suffixes, uint32_t nsuffixes, char *out, uint64_t outcap,
                          uint32_t *hi, uint16_t *tags, uint32_t *lens, uint64_t maxrecs,
                          uint64_t *outlen, uint64_t *entries);

/* Placing the records in a table of nslots slots (a multiple of 16) by
 * linear probing, each in the first free slot from its home on, a block of
 * records at a time (hi[i] = hash >> 32, tags[i] and lens[i] of each, as
 * sgb_build_records gives them).  In record order the last w records run
 * past the last slot and wrap to slots 0 .. w-1, so the others start at w;
 * the writer finds w by placing the first n - w records with
 * sgb_build_place from pos w until they end by nslots.  In the file the
 * wrapped records come first (the slot order).
 *
 * sgb_build_place: where the next record would go after the n records
 * when the first may go no lower than pos. */
uint64_t sgb_build_place(const uint32_t *hi, uint64_t n, uint32_t nslots, uint64_t pos);

/* sgb_build_fill: set the tags (tags_out, nslots) and the record offsets
 * of the blocks (blocks_out, nslots / 16) for n records in slot order:
 * wrapped ones (wrapped != 0) go to the slots from state[3] on, the others
 * to their probe slot from state[0] on.  state: [0] the lowest slot for the
 * next record that did not wrap (start: w), [1] the file offset of the next
 * record (start: the first record's), [2] the first block whose offset is
 * not set yet (start: 0), [3] the next slot of a wrapped record (start: 0).
 * Returns 0, or -1 when a slot passes nslots or an offset 2^32. */
int sgb_build_fill(const uint32_t *hi, const uint16_t *tags, const uint32_t *lens, uint64_t n,
                   int wrapped, uint32_t nslots, uint16_t *tags_out, uint32_t *blocks_out,
                   uint64_t *state);
/* cdef-end */

#endif
