// File URIs recently found to name regular files inside the data roots, so that a hot cursor is
// not parsed and resolved again, lstat by lstat, on every Invoke. A URI names one path, so its
// verdict is the path's; two spellings of a path (an escape or not) are kept apart.
//
// A verdict is only ever as fresh as the moment it was made: the replica opens the file later
// by itself (its sandbox, not this check, is what holds it to the data roots). Keeping a
// verdict for a short while, as nginx's open_file_cache does, widens that window by at most the
// time to live: a file deleted, or swapped for a symlink that leads outside, is still taken
// for that long. Only passed checks are kept; a URI that failed is checked again every time.
#pragma once

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace eofaas::proxy {

/// Thread-safe. A time to live of zero keeps nothing.
class CheckedFiles {
 public:
  /// At most `capacity` URIs are kept: when it is reached, the expired ones are dropped, and
  /// all of them when none has expired.
  CheckedFiles(const common::Clock& clock, absl::Duration time_to_live, size_t capacity = 4096);

  /// The file named by `uri` passed the check less than the time to live ago.
  bool Fresh(absl::string_view uri) const;

  /// The file named by `uri` passed the check now.
  void Passed(absl::string_view uri);

 private:
  const common::Clock& clock_;
  const common::Clock::TimePoint::duration time_to_live_;
  const size_t capacity_;
  mutable absl::Mutex mutex_;
  absl::flat_hash_map<std::string, common::Clock::TimePoint> expiry_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace eofaas::proxy
