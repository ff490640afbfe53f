// The calls of one caller, cancelled together: a Map whose client went away cancels every
// invocation it still has queued or in flight.
#pragma once

#include <mutex>

#include "absl/container/flat_hash_set.h"

namespace eofaas::proxy {

/// Something a CallGroup can cancel: one invocation of a dispatcher.
class Cancellable {
 public:
  virtual ~Cancellable() = default;
  /// Must not block or call back into the group: it is called with the group's lock held.
  virtual void Cancel() = 0;
};

/// Thread-safe. Shared by the caller and its calls (std::shared_ptr).
class CallGroup {
 public:
  /// Cancels every registered call, and every call registered later (each completes with
  /// CANCELLED).
  void Cancel();

  /// For dispatchers: registers a call until Remove. False (and nothing registered) when the group
  /// is already cancelled.
  bool Add(Cancellable* call);
  void Remove(Cancellable* call);

 private:
  std::mutex mu_;  // guards the members below
  bool cancelled_ = false;
  absl::flat_hash_set<Cancellable*> calls_;
};

}  // namespace eofaas::proxy
