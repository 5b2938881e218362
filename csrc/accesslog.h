/*
 * accesslog.h -- the monitor's scanner for Squid native access.log lines:
 * a whole piece of lines in one call, so Python only builds the rows.
 *
 * squidguard_bloom/native/accesslog.py hands it a piece's raw bytes (lines
 * separated by '\n') and reads back, for each line, whether C could read it
 * ("fast") and, for a fast line, its numbers and the text fields Python
 * stores.  monitor/parse.py reads every other line ("slow") with its own
 * Python code, so Python alone decides their rows or error messages; what C
 * reads must be exactly what that Python code would read.  So C takes a line
 * only when it is certain:
 *
 *   bytes   printable ASCII (0x20..0x7e) and tab only: any other control
 *           byte (\r, \v, \f, NUL, 0x1c..0x1f), DEL or byte >= 0x80 makes the
 *           line slow (Python's str.split() also splits on some of those);
 *   fields  runs of spaces and tabs split the line into exactly 10 fields
 *           (leading and trailing ones ignored, as str.split() does);
 *   ts      field 1 is [0-9]+ or [0-9]+.[0-9]+ with at most SGB_AL_TS_DIGITS
 *           digits (Squid writes 13), correctly rounded as Python's float();
 *   numbers field 2 (elapsed), the part of field 4 after its first '/'
 *           (status) and field 5 (size) are [0-9]{1,18}.
 *
 * The range checks stay in Python, for both kinds of line.
 *
 * For each fast line the scanner appends its nine text fields to out, each
 * followed by one space: client (field 3), result (field 4 before its first
 * '/'), method (6), URL (7), ident (8), hierarchy and peer (field 9 split at
 * its first '/', peer empty without one), MIME type (10), and the URL's host
 * as monitor/parse.py's host_of finds it, lower-cased.  A slow line gets
 * nine empty fields (nine spaces), so out.split(" ") yields exactly nine
 * strings a line (and one empty string at the end).  Fields of a fast line
 * hold no space, tab or newline.
 *
 * Nothing here allocates, writes to stdout or stderr, or exits; every read
 * and write stays inside the given buffers.
 */
#ifndef SGB_ACCESSLOG_H
#define SGB_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin */
#define SGB_AL_TS_DIGITS 15 /* time stamps with more digits are slow lines */

/*
 * Scan the first `lines` lines of buf[0 .. size): line k ends at its '\n'
 * or, for the last one, at the end of buf.  For line k: fast[k] is 1 (read
 * here) or 0 (slow); for a fast line ts[k], elapsed[k], status[k] and
 * bytes[k] are its numbers, for a slow one they are 0.  out (out_cap bytes)
 * gets the text fields described above; 2 * size + 9 * lines bytes always
 * suffice.  Returns the bytes written to out, or -1 if out_cap is too small
 * (then fast and the numbers are filled only partly).
 */
int64_t sgb_al_scan(const uint8_t *buf, size_t size, size_t lines, uint8_t *fast, double *ts,
                    int64_t *elapsed, int64_t *status, int64_t *bytes, uint8_t *out,
                    size_t out_cap);
/* cdef-end */

#endif
