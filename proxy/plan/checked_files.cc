#include "proxy/plan/checked_files.h"

#include <chrono>
#include <string>

namespace eofaas::proxy {

CheckedFiles::CheckedFiles(const common::Clock& clock, absl::Duration time_to_live, size_t capacity)
    : clock_(clock),
      time_to_live_(std::chrono::duration_cast<common::Clock::TimePoint::duration>(
          absl::ToChronoNanoseconds(time_to_live))),
      capacity_(capacity) {}

bool CheckedFiles::Fresh(absl::string_view uri) const {
  if (time_to_live_.count() <= 0) return false;
  const common::Clock::TimePoint now = clock_.Now();
  absl::MutexLock lock(&mutex_);
  auto found = expiry_.find(uri);
  return found != expiry_.end() && now < found->second;
}

void CheckedFiles::Passed(absl::string_view uri) {
  if (time_to_live_.count() <= 0 || capacity_ == 0) return;
  const common::Clock::TimePoint now = clock_.Now();
  absl::MutexLock lock(&mutex_);
  if (expiry_.size() >= capacity_ && !expiry_.contains(uri)) {
    for (auto entry = expiry_.begin(); entry != expiry_.end();) {
      if (entry->second <= now) {
        expiry_.erase(entry++);
      } else {
        ++entry;
      }
    }
    if (expiry_.size() >= capacity_) expiry_.clear();
  }
  expiry_.insert_or_assign(std::string(uri), now + time_to_live_);
}

}  // namespace eofaas::proxy
