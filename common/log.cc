#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace eofaas::common {
namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

}  // namespace

void SetLogLevel(LogLevel level) { min_level = level; }

void LogLine(LogLevel level, std::string_view message) {
  if (level < min_level.load()) return;
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   LevelName(level), " ", absl::string_view(message.data(), message.size()), "\n");
  // One write(2) per line keeps lines from different threads whole.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace eofaas::common
