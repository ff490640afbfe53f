// The control plane's client of the Kubernetes API: server-side apply, get, list (paged), watch
// (a stream of JSON events) and delete (foreground propagation), with the API server's answers
// turned into absl::Status values. Synchronous: each call blocks its caller's thread, so the
// control plane calls it from its workers, and each watch gets a thread of its own (Informer).
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "control/k8s/client/https_transport.h"
#include "control/k8s/client/kube_config.h"
#include "control/k8s/client/token_file.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

/// The API path of the objects of `kind` (of `api_version`) in a namespace:
/// "/api/v1/namespaces/<ns>/configmaps", "/apis/apps/v1/namespaces/<ns>/deployments". Knows the
/// kinds eofaas manages or reads (ConfigMap, Secret, Service, Pod, Deployment, ReplicaSet, Job,
/// HorizontalPodAutoscaler, EndpointSlice). INVALID_ARGUMENT for another kind, or a namespace
/// that is not a DNS label.
absl::StatusOr<std::string> CollectionPath(absl::string_view api_version, absl::string_view kind,
                                           absl::string_view namespace_name);

/// The API path of one object: CollectionPath + "/" + name. INVALID_ARGUMENT also for a name that
/// is not a DNS subdomain.
absl::StatusOr<std::string> ObjectPath(absl::string_view api_version, absl::string_view kind,
                                       absl::string_view namespace_name, absl::string_view name);

/// True for the error of a resourceVersion or continue token older than the history the server
/// keeps (HTTP 410 Gone, or a watch's ERROR event with code 410): what is known must be listed
/// again. It is the only error this client reports as OUT_OF_RANGE.
bool IsExpired(const absl::Status& status);

/// Which objects of a collection a List or Watch covers; empty: all.
struct Selector {
  /// "app.kubernetes.io/managed-by=eofaas,eofaas.io/function!=x"
  std::string labels;
  /// "metadata.name=x"
  std::string fields;
};

/// A collection as listed.
struct ObjectList {
  /// In the server's order. Kubernetes leaves `kind` and `apiVersion` out of list items.
  std::vector<boost::json::object> items;
  /// The version the list was taken at, from which a watch continues.
  std::string resource_version;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

/// One change of a watched collection. A bookmark carries no change: only its object's
/// metadata.resourceVersion, how far the watch has come.
struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  /// The object after the change; for kDeleted its last state.
  boost::json::object object;
};

struct KubeClientOptions {
  /// The most any request may take; a watch must start (get its response header) within it.
  absl::Duration request_timeout = absl::Seconds(30);
  /// A watch asks the server to end it after this long (timeoutSeconds), and gives up on a
  /// server silent for this long plus request_timeout. Bookmarks come about once a minute.
  absl::Duration watch_timeout = absl::Minutes(5);
  /// How often KubeConfig::token_file is read again (client-go reads it every minute too).
  absl::Duration token_reload = absl::Minutes(1);
  /// Measures token_reload; must outlive the client.
  const common::Clock* clock = &common::SteadyClock::Get();
  /// The field manager of server-side apply: the owner of every field the control plane sets.
  std::string field_manager = "eofaas";
  /// Objects per LIST request; List follows the continue tokens.
  int page_size = 500;
};

/// Thread-safe. Every request runs on its own HTTPS connection, with a deadline.
///
/// Errors map the API server's status (and its Status object's message) to codes:
/// 400, 415 and 422 → INVALID_ARGUMENT, 401 → UNAUTHENTICATED (after the token file was read again
/// and the request retried once), 403 → PERMISSION_DENIED, 404 → NOT_FOUND, 409 → ABORTED (a
/// conflict; ALREADY_EXISTS for reason AlreadyExists), 410 → OUT_OF_RANGE (IsExpired),
/// 429 and 5xx → UNAVAILABLE, anything else → UNKNOWN. Transport failures are UNAVAILABLE, an
/// expired deadline DEADLINE_EXCEEDED.
class KubeClient {
 public:
  using WatchCallback = std::function<void(const WatchEvent& event)>;

  /// INVALID_ARGUMENT naming the field for an unusable `config` (see HttpsTransport::Create).
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(const KubeConfig& config,
                                                            KubeClientOptions options = {});

  /// Server-side apply of `object` (which names its apiVersion, kind, metadata.namespace and
  /// metadata.name): PATCH application/apply-patch+yaml, with fieldManager and force=true, so
  /// the control plane takes over fields another manager set. Creates the object or makes the
  /// fields it manages what `object` says. Returns the object as the server stored it. The field
  /// manager is `field_manager`, or KubeClientOptions::field_manager when that is empty.
  absl::StatusOr<boost::json::object> Apply(const YAML::Node& object,
                                            const std::string& field_manager = "");

  /// The object at `path` (ObjectPath). NOT_FOUND when there is none.
  absl::StatusOr<boost::json::object> Get(const std::string& path);

  /// The log of the only (or first) container of pod `pod`, as plain text: its last
  /// `tail_lines` lines, or all of it for 0. NOT_FOUND when there is no such pod.
  absl::StatusOr<std::string> PodLog(absl::string_view namespace_name, absl::string_view pod,
                                     int tail_lines = 0);

  /// Deletes the object at `path` with foreground propagation: the server removes the objects
  /// it owns (a Deployment's ReplicaSets and Pods) before it, so the object disappears only once
  /// they are gone. OK once the deletion is accepted; NOT_FOUND when there was no object.
  absl::Status Delete(const std::string& path);

  /// Every object of the collection at `path` (CollectionPath) that `selector` picks, requested
  /// in pages of `page_size`. OUT_OF_RANGE when the listing took so long that its version expired.
  absl::StatusOr<ObjectList> List(const std::string& path, const Selector& selector = {});

  /// Watches the collection at `path` from `resource_version` (exclusive; from ObjectList or the
  /// last event seen), bookmarks included, calling `on_event` on this thread for each event in
  /// order. Returns OK when the server ends the watch (watch_timeout) or once `stop` is
  /// requested; OUT_OF_RANGE (IsExpired) when `resource_version` is too old, whether the server
  /// answers so or sends an ERROR event; another error for a failed or broken watch.
  absl::Status Watch(const std::string& path, const Selector& selector,
                     const std::string& resource_version, const WatchCallback& on_event,
                     std::stop_token stop);

  /// The field manager of Apply (KubeClientOptions::field_manager).
  const std::string& field_manager() const { return options_.field_manager; }

  /// The namespace of the configuration (service account or kubeconfig context).
  const std::string& default_namespace() const { return default_namespace_; }

 private:
  KubeClient(std::unique_ptr<HttpsTransport> transport, KubeConfig config,
             KubeClientOptions options);

  /// Sends `request` (through `exchange`) with the current token; after a 401, once more with
  /// the token file read again if that changed the token.
  absl::StatusOr<HttpResponse> Authorized(
      HttpRequest request,
      const std::function<absl::StatusOr<HttpResponse>(const HttpRequest&)>& exchange);
  /// The body of a 2xx answer to `request`, or the error the answer means.
  absl::StatusOr<std::string> CallForBody(HttpRequest request);
  absl::StatusOr<boost::json::object> Call(HttpRequest request);

  std::unique_ptr<HttpsTransport> transport_;
  const KubeClientOptions options_;
  const std::string static_token_;
  const std::string default_namespace_;
  /// Set when the configuration names a token file.
  std::optional<TokenFile> token_file_;
};

}  // namespace eofaas::control::k8s
