// SPDX-License-Identifier: BSD-3-Clause
// weir's log: one line per event on stderr, with a syslog priority. Under systemd (stderr is the
// journal: JOURNAL_STREAM names it) each line starts with "<N>", which journald turns into the
// entry's priority, so `journalctl -u weir -p warning` finds weir's warnings and errors. On a
// terminal the lines are as written. Control side only: workers do not log.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace weir::log {

// syslog(3) priorities.
enum class Level : int { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

// Reads JOURNAL_STREAM once; call before the first line (later calls are harmless).
void init();
// Lines above this level are not written (default kInfo).
void set_level(Level l);
Level level();
// "error", "warning", "notice", "info", "debug"; false for anything else.
bool parse_level(const std::string& name, Level& out);
const char* level_name(Level l);
// Where lines go (default stderr); the journal prefix applies only to the stream JOURNAL_STREAM
// names.
void set_stream(std::FILE* f);
bool to_journal();

// One line (a trailing newline is added when missing).
void say(Level l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void vsay(Level l, const char* fmt, va_list ap) __attribute__((format(printf, 2, 0)));
// Text from elsewhere (DPDK's log), one or more lines, at priority `l`.
void raw(Level l, const char* text, size_t n);

}  // namespace weir::log
