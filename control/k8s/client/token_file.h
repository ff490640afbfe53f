// A bearer token kept in a file that is replaced while the control plane runs: the kubelet
// rotates a pod's projected service-account token well before it expires, so the file is read
// again now and then, and at once when the server has rejected the token.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace eofaas::control::k8s {

/// Thread-safe. `clock` must outlive it.
class TokenFile {
 public:
  /// The file is read at the first Get, then again once `reload_after` has passed on `clock`.
  TokenFile(std::string path, absl::Duration reload_after, const common::Clock& clock);

  /// The token (surrounding whitespace removed). When reading the file again fails, the token
  /// read last is kept: a rotation replaces the file atomically, so a failure is passing.
  /// UNAUTHENTICATED naming the file when it has never been read.
  absl::StatusOr<std::string> Get();

  /// Reads the file now (after the server rejected the token); true when the token changed.
  bool Reload();

 private:
  absl::Status ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string path_;
  const absl::Duration reload_after_;
  const common::Clock& clock_;
  absl::Mutex mutex_;
  std::string token_ ABSL_GUARDED_BY(mutex_);
  common::Clock::TimePoint read_at_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace eofaas::control::k8s
