// A collection of the cluster kept in view: list it, then watch it from there for as long as the
// control plane runs, the way client-go's reflector does. The deployer follows its Deployments,
// Pods and EndpointSlices with one informer each.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "control/k8s/client/kube_client.h"

namespace eofaas::control::k8s {

struct InformerOptions {
  Selector selector;
  /// Waits after a failed list or watch: doubling from the first to the second.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

/// Lists the collection, reports the list, then watches from its resourceVersion and reports
/// each change. When the server ends a watch, watches again from the last resourceVersion seen
/// (bookmarks move it on, so a quiet collection does not fall behind the server's history);
/// when that version has expired (410, IsExpired), lists again and reports the fresh list.
/// Other failures are logged and retried after a backoff: an informer never gives up.
///
/// The handlers run on the informer's own thread, one at a time, and must not block for long.
/// Start once; Stop (or the destructor) ends the watch and waits for the thread, after which no
/// handler runs. The client must outlive the informer.
class Informer {
 public:
  struct Handlers {
    /// After every list: the whole collection. It replaces what was known: an object missing
    /// from it has gone.
    std::function<void(const ObjectList& list)> on_list;
    /// Each change after it: kAdded, kModified or kDeleted (bookmarks are not reported).
    std::function<void(const WatchEvent& event)> on_event;
  };

  /// Follows the collection at `path` (CollectionPath).
  Informer(KubeClient& client, std::string path, Handlers handlers, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);
  /// Sleeps `backoff` unless stopped first, then doubles it up to the maximum.
  void Backoff(std::stop_token stop, absl::Duration& backoff);

  KubeClient& client_;
  const std::string path_;
  const Handlers handlers_;
  const InformerOptions options_;
  /// Only for Backoff: a sleep that a stop request interrupts.
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace eofaas::control::k8s
