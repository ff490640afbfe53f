// Minimal structured-enough logging: one line per event on stderr, with time and level.
#pragma once

#include <string_view>

#include "absl/strings/str_cat.h"

namespace eofaas::common {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// Lines below this level are dropped. Default kInfo. Thread-safe.
void SetLogLevel(LogLevel level);

/// Writes one line atomically. Thread-safe.
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  LogLine(LogLevel::kWarning, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine(LogLevel::kError, absl::StrCat(args...));
}
template <typename... Args>
void LogDebug(const Args&... args) {
  LogLine(LogLevel::kDebug, absl::StrCat(args...));
}

}  // namespace eofaas::common
