#include "proxy/dispatch/deadline_sweep.h"

namespace eofaas::proxy {

void DeadlineSweep::Watch(Watched& watched, TimePoint deadline) {
  std::lock_guard lock(mu_);
  watched.deadline_ = deadline;
  watched.expired_ = false;
  watched.watched_ = true;
  watched.previous_ = nullptr;
  watched.next_ = head_;
  if (head_ != nullptr) head_->previous_ = &watched;
  head_ = &watched;
  if (!ticking_) {
    ticking_ = true;
    ArmTick();
  }
}

bool DeadlineSweep::Unwatch(Watched& watched) {
  std::lock_guard lock(mu_);
  if (watched.watched_) Unlink(watched);
  return watched.expired_;
}

void DeadlineSweep::Unlink(Watched& watched) {
  if (watched.previous_ != nullptr) {
    watched.previous_->next_ = watched.next_;
  } else {
    head_ = watched.next_;
  }
  if (watched.next_ != nullptr) watched.next_->previous_ = watched.previous_;
  watched.previous_ = watched.next_ = nullptr;
  watched.watched_ = false;
}

void DeadlineSweep::ArmTick() {
  timer_.expires_after(kTick);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (!error) self->Sweep();
  });
}

void DeadlineSweep::Sweep() {
  std::lock_guard lock(mu_);
  const TimePoint now = std::chrono::steady_clock::now();
  for (Watched* watched = head_; watched != nullptr;) {
    Watched* next = watched->next_;
    if (watched->deadline_ <= now) {
      Unlink(*watched);
      watched->expired_ = true;
      watched->OnDeadline();
    }
    watched = next;
  }
  // Idle, the sweep costs nothing: the next Watch starts it again.
  ticking_ = head_ != nullptr;
  if (ticking_) ArmTick();
}

}  // namespace eofaas::proxy
