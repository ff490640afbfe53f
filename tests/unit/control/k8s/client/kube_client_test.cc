// The API client against a fake API server over real HTTPS: server-side apply, get, delete, paged
// lists, watches, the errors the server answers with, tokens that rotate, kubeconfig credentials
// and TLS verification.
#include "control/k8s/client/kube_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "control/k8s/render.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/control/k8s/client/api_server_test.h"

namespace eofaas::control::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class KubeClientTest : public ApiServerTest {};

TEST(ApiPathTest, NamesTheCollectionAndTheObject) {
  EXPECT_EQ(*CollectionPath("v1", "ConfigMap", "fns"), "/api/v1/namespaces/fns/configmaps");
  EXPECT_EQ(*ObjectPath("apps/v1", "Deployment", "fns", "echo-b5d2k"),
            "/apis/apps/v1/namespaces/fns/deployments/echo-b5d2k");
  EXPECT_EQ(*CollectionPath("discovery.k8s.io/v1", "EndpointSlice", "fns"),
            "/apis/discovery.k8s.io/v1/namespaces/fns/endpointslices");
  EXPECT_EQ(*ObjectPath("autoscaling/v2", "HorizontalPodAutoscaler", "fns", "a.b"),
            "/apis/autoscaling/v2/namespaces/fns/horizontalpodautoscalers/a.b");
}

TEST(ApiPathTest, RejectsWhatCannotBeAPathSegment) {
  EXPECT_THAT(
      std::string(CollectionPath("networking.k8s.io/v1", "Ingress", "fns").status().message()),
      HasSubstr("kind"));
  EXPECT_THAT(std::string(CollectionPath("v1", "Pod", "a/b").status().message()),
              HasSubstr("metadata.namespace"));
  EXPECT_THAT(std::string(ObjectPath("v1", "Pod", "fns", "x?watch=1").status().message()),
              HasSubstr("metadata.name"));
  EXPECT_EQ(ObjectPath("v1", "Pod", "fns", "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KubeClientTest, ApplyCreatesTheObjectAndGetReadsIt) {
  StartServer();
  auto client = Client(Config());
  absl::StatusOr<boost::json::object> applied = client->Apply(Deployment("echo", 1));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(Meta(*applied, "name"), "echo");
  EXPECT_FALSE(Meta(*applied, "uid").empty());
  EXPECT_FALSE(Meta(*applied, "resourceVersion").empty());

  const std::vector<tests::RecordedRequest> requests = server_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PATCH");
  EXPECT_EQ(requests[0].target,
            "/apis/apps/v1/namespaces/fns/deployments/echo?fieldManager=eofaas&force=true");
  EXPECT_EQ(requests[0].content_type, "application/apply-patch+yaml");
  EXPECT_EQ(requests[0].authorization, "Bearer token-1");

  absl::StatusOr<boost::json::object> got = client->Get(std::string(kDeployments) + "/echo");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *applied);
  // The YAML sent keeps its types: numbers stay numbers, quoted strings strings.
  EXPECT_EQ(got->at("spec").at("replicas"), 1);
  EXPECT_EQ(got->at("spec")
                .at("template")
                .at("spec")
                .at("containers")
                .at(0)
                .at("ports")
                .at(0)
                .at("containerPort"),
            8080);
  EXPECT_EQ(got->at("metadata").at("managedFields").at(0).at("manager"), "eofaas");
}

TEST_F(KubeClientTest, ApplyingAgainUpdatesTheObjectUnderANewVersion) {
  StartServer();
  auto client = Client(Config());
  absl::StatusOr<boost::json::object> first = client->Apply(Deployment("echo", 1));
  absl::StatusOr<boost::json::object> second = client->Apply(Deployment("echo", 3));
  ASSERT_TRUE(first.ok() && second.ok()) << first.status() << second.status();
  EXPECT_EQ(second->at("spec").at("replicas"), 3);
  EXPECT_EQ(Meta(*second, "uid"), Meta(*first, "uid"));
  EXPECT_GT(std::stoll(Meta(*second, "resourceVersion")),
            std::stoll(Meta(*first, "resourceVersion")));
  EXPECT_EQ(second->at("metadata").at("generation"), 2);

  // The same configuration again changes nothing, so the version stays.
  absl::StatusOr<boost::json::object> third = client->Apply(Deployment("echo", 3));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(Meta(*third, "resourceVersion"), Meta(*second, "resourceVersion"));
}

// The managers that own spec.replicas, as the object's managedFields say.
std::vector<std::string> ReplicasOwners(const boost::json::object& object) {
  std::vector<std::string> owners;
  for (const boost::json::value& entry : object.at("metadata").at("managedFields").as_array()) {
    const boost::json::value* spec = entry.at("fieldsV1").as_object().if_contains("f:spec");
    if (spec != nullptr && spec->as_object().contains("f:replicas")) {
      owners.emplace_back(entry.at("manager").as_string());
    }
  }
  return owners;
}

TEST_F(KubeClientTest, AFieldAManagerNoLongerAppliesGoesUnlessAnotherManagerOwnsIt) {
  StartServer();
  auto client = Client(Config());
  ASSERT_TRUE(client->Apply(Deployment("echo", 3)).ok());
  YAML::Node without_replicas = Deployment("echo", 3);
  without_replicas["spec"].remove("replicas");
  absl::StatusOr<boost::json::object> applied = client->Apply(without_replicas);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_FALSE(applied->at("spec").as_object().contains("replicas"));
  EXPECT_TRUE(applied->at("spec").as_object().contains("template"));

  // Another manager applying the same value shares the field, and keeps it when eofaas drops it.
  ASSERT_TRUE(client->Apply(Deployment("echo", 3)).ok());
  applied = client->Apply(YAML::Load(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: fns}
spec: {replicas: 3}
)"),
                          "handover");
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(ReplicasOwners(*applied), ElementsAre("eofaas", "handover"));
  applied = client->Apply(without_replicas);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->at("spec").at("replicas"), 3);
  EXPECT_THAT(ReplicasOwners(*applied), ElementsAre("handover"));

  // An update that changes the value (a controller's) takes the field over.
  const std::string path = std::string(kDeployments) + "/echo";
  boost::json::object scaled = *applied;
  scaled["spec"].as_object()["replicas"] = 5;
  server_->Store(path, std::move(scaled));
  EXPECT_THAT(ReplicasOwners(*server_->Object(path)), ElementsAre("kube-controller-manager"));
}

TEST_F(KubeClientTest, AppliesARenderedWorkload) {
  StartServer();
  auto client = Client(Config());
  const std::string function = "ndvi";
  const FunctionGeneration generation{
      .namespace_name = kNamespace,
      .function = function,
      .uid = "uid-1",
      .generation = 4,
      .deployment_name = common::DeploymentName(function, "uid-1", 4),
      .template_name = "python3"};
  WorkloadSpec spec;
  spec.image = "registry.example.com/eofaas/ndvi:sha256-ab";
  spec.max_replicas = 3;
  absl::StatusOr<std::vector<YAML::Node>> objects =
      RenderWorkload(generation, spec, {.server = "registry.example.com"});
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 3u);  // Deployment, Service, HPA
  for (const YAML::Node& object : *objects) {
    absl::StatusOr<boost::json::object> applied = client->Apply(object);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }
  absl::StatusOr<boost::json::object> deployment =
      client->Get(absl::StrCat(kDeployments, "/", generation.deployment_name));
  ASSERT_TRUE(deployment.ok()) << deployment.status();
  // A quoted annotation stays a string.
  EXPECT_EQ(deployment->at("metadata").at("annotations").at("eofaas.io/generation"), "4");
  absl::StatusOr<boost::json::object> hpa = client->Get(absl::StrCat(
      "/apis/autoscaling/v2/namespaces/fns/horizontalpodautoscalers/", generation.deployment_name));
  ASSERT_TRUE(hpa.ok()) << hpa.status();
  EXPECT_EQ(hpa->at("spec").at("maxReplicas"), 3);
}

TEST_F(KubeClientTest, GetOfAMissingObjectIsNotFound) {
  StartServer();
  absl::StatusOr<boost::json::object> got =
      Client(Config())->Get(std::string(kDeployments) + "/nope");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("deployments.apps \"nope\" not found"));
}

TEST_F(KubeClientTest, PodLogIsThePodsPlainTextLog) {
  StartServer();
  const std::string pod = "/api/v1/namespaces/fns/pods/build-x7k2p";
  server_->Store(pod, boost::json::parse(R"({"apiVersion":"v1","kind":"Pod"})").as_object());
  server_->SetLog(pod, "step 1\nerror: no such file\n");
  std::unique_ptr<KubeClient> client = Client(Config());
  ASSERT_NE(client, nullptr);

  absl::StatusOr<std::string> log = client->PodLog(kNamespace, "build-x7k2p", 20);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "step 1\nerror: no such file\n");
  EXPECT_TRUE(server_->WaitForRequest("/pods/build-x7k2p/log?tailLines=20"));

  absl::StatusOr<std::string> missing = client->PodLog(kNamespace, "gone");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(client->PodLog(kNamespace, "Not_A_Name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KubeClientTest, DeleteAsksForForegroundPropagation) {
  StartServer();
  auto client = Client(Config());
  absl::StatusOr<boost::json::object> owner = client->Apply(Deployment("echo", 1));
  ASSERT_TRUE(owner.ok()) << owner.status();
  YAML::Node dependent = ConfigMap("echo-state");
  YAML::Node reference;
  reference["apiVersion"] = "apps/v1";
  reference["kind"] = "Deployment";
  reference["name"] = "echo";
  reference["uid"] = String(Meta(*owner, "uid"));
  dependent["metadata"]["ownerReferences"].push_back(reference);
  ASSERT_TRUE(client->Apply(dependent).ok());

  ASSERT_TRUE(client->Delete(std::string(kDeployments) + "/echo").ok());
  const tests::RecordedRequest deletion = server_->Requests().back();
  EXPECT_EQ(deletion.method, "DELETE");
  EXPECT_EQ(boost::json::parse(deletion.body).at("propagationPolicy"), "Foreground");
  EXPECT_FALSE(server_->Object(std::string(kDeployments) + "/echo"));
  EXPECT_FALSE(server_->Object(std::string(kConfigMaps) + "/echo-state"));  // collected first

  EXPECT_EQ(client->Delete(std::string(kDeployments) + "/echo").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KubeClientTest, ListFollowsContinueTokensPageByPage) {
  StartServer();
  auto client = Client(Config(), {.page_size = 2});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client->Apply(ConfigMap(absl::StrCat("cm-", i), i % 2 == 0 ? "a" : "b")).ok());
  }
  absl::StatusOr<ObjectList> list = client->List(kConfigMaps);
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> names;
  for (const boost::json::object& item : list->items) {
    names.push_back(Meta(item, "name"));
    EXPECT_FALSE(item.contains("kind"));  // as kube-apiserver lists
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cm-0", "cm-1", "cm-2", "cm-3", "cm-4"}));
  EXPECT_EQ(list->resource_version, std::to_string(server_->revision()));
  EXPECT_EQ(server_->ListCount(kConfigMaps), 3);
  EXPECT_THAT(server_->Requests().back().target, HasSubstr("limit=2&continue="));

  absl::StatusOr<ObjectList> selected = client->List(kConfigMaps, {.labels = "tier=a"});
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_EQ(selected->items.size(), 3u);
  EXPECT_THAT(server_->Requests().back().target, HasSubstr("labelSelector=tier%3Da"));
}

TEST_F(KubeClientTest, WatchStreamsChunkedEventsInOrder) {
  StartServer({.split_watch_events = true});
  auto client = Client(Config());
  ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());
  absl::StatusOr<ObjectList> list = client->List(kConfigMaps);
  ASSERT_TRUE(list.ok()) << list.status();

  EventLog events;
  std::vector<int64_t> versions;
  absl::Status watched = absl::UnknownError("still watching");
  std::stop_source stop;
  std::thread watcher([&] {
    watched = client->Watch(
        kConfigMaps, {}, list->resource_version,
        [&](const WatchEvent& event) {
          versions.push_back(std::stoll(Meta(event.object, "resourceVersion")));
          events.Add(Describe(event));
        },
        stop.get_token());
  });
  ASSERT_TRUE(client->Apply(ConfigMap("b")).ok());
  ASSERT_TRUE(client->Apply(ConfigMap("a", "c")).ok());
  ASSERT_TRUE(client->Delete(std::string(kConfigMaps) + "/b").ok());
  // Foreground deletion: b is marked (MODIFIED), then goes.
  EXPECT_EQ(events.WaitFor(4),
            (std::vector<std::string>{"ADDED b", "MODIFIED a", "MODIFIED b", "DELETED b"}));
  server_->EndWatches();
  watcher.join();
  EXPECT_TRUE(watched.ok()) << watched;
  EXPECT_TRUE(std::is_sorted(versions.begin(), versions.end()));
  EXPECT_GT(versions.front(), std::stoll(list->resource_version));

  EXPECT_TRUE(server_->WaitForRequest("?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                                      list->resource_version + "&timeoutSeconds=300"));
}

TEST_F(KubeClientTest, StopEndsAWatchAtOnce) {
  StartServer();
  auto client = Client(Config());
  absl::Status watched = absl::UnknownError("still watching");
  std::stop_source stop;
  std::thread watcher([&] {
    watched = client->Watch(
        kConfigMaps, {}, "", [](const WatchEvent&) {}, stop.get_token());
  });
  while (server_->Requests().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto start = std::chrono::steady_clock::now();
  stop.request_stop();
  watcher.join();
  EXPECT_TRUE(watched.ok()) << watched;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(KubeClientTest, WatchFromAnExpiredVersionIsOutOfRange) {
  // kube-apiserver answers with an ERROR event in a 200 stream; older servers with HTTP 410.
  for (const bool as_http_status : {false, true}) {
    SCOPED_TRACE(as_http_status ? "HTTP 410" : "ERROR event");
    StartServer({.expired_watch_as_http_status = as_http_status});
    auto client = Client(Config());
    ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());
    absl::StatusOr<ObjectList> list = client->List(kConfigMaps);
    ASSERT_TRUE(list.ok()) << list.status();
    ASSERT_TRUE(client->Apply(ConfigMap("b")).ok());
    server_->Compact();

    int events = 0;
    const absl::Status watched = client->Watch(kConfigMaps, {}, list->resource_version,
                                               [&](const WatchEvent&) { ++events; }, {});
    EXPECT_TRUE(IsExpired(watched)) << watched;
    EXPECT_EQ(watched.code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(std::string(watched.message()), HasSubstr("410 Expired: too old resource version"));
    EXPECT_EQ(events, 0);
  }
}

TEST_F(KubeClientTest, ConflictIsAbortedWithTheServersMessage) {
  StartServer();
  auto client = Client(Config());
  ASSERT_TRUE(client->Apply(Deployment("echo", 1)).ok());
  YAML::Node stale = Deployment("echo", 2);
  stale["metadata"]["resourceVersion"] = String("1");  // a precondition no longer met
  absl::StatusOr<boost::json::object> applied = client->Apply(stale);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(applied.status().message()), HasSubstr("409 Conflict"));
  EXPECT_THAT(std::string(applied.status().message()),
              HasSubstr("Operation cannot be fulfilled on deployments.apps \"echo\": the object "
                        "has been modified"));
}

TEST_F(KubeClientTest, ARejectedTokenIsReadAgainFromItsFileAndTheRequestRetried) {
  StartServer();
  const std::string token_file = dir_.Write("token", "token-1\n");
  KubeConfig config = Config();
  config.token.clear();
  config.token_file = token_file;
  auto client = Client(config);
  ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());

  // The kubelet rotates the token; the server already accepts only the new one.
  server_->SetTokens({"token-2"});
  dir_.Write("token", "token-2\n");
  absl::StatusOr<boost::json::object> applied = client->Apply(ConfigMap("b"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  const std::vector<tests::RecordedRequest> requests = server_->Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].authorization, "Bearer token-1");
  EXPECT_EQ(requests[1].user, "");  // rejected
  EXPECT_EQ(requests[2].authorization, "Bearer token-2");
}

TEST_F(KubeClientTest, TheTokenFileIsReadAgainEveryMinute) {
  StartServer({.tokens = {"token-1", "token-2"}});
  const std::string token_file = dir_.Write("token", "token-1");
  KubeConfig config = Config();
  config.token.clear();
  config.token_file = token_file;
  fakes::FakeClock clock;
  auto client = Client(config, {.token_reload = absl::Minutes(1), .clock = &clock});
  const std::string path = std::string(kConfigMaps) + "/none";

  client->Get(path).status().IgnoreError();
  dir_.Write("token", "token-2");
  client->Get(path).status().IgnoreError();
  clock.Advance(std::chrono::seconds(61));
  client->Get(path).status().IgnoreError();
  const std::vector<tests::RecordedRequest> requests = server_->Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].authorization, "Bearer token-1");
  EXPECT_EQ(requests[1].authorization, "Bearer token-1");
  EXPECT_EQ(requests[2].authorization, "Bearer token-2");
}

TEST_F(KubeClientTest, AWrongTokenIsUnauthenticated) {
  StartServer();
  KubeConfig config = Config();
  config.token = "wrong";
  absl::StatusOr<boost::json::object> got = Client(config)->Get(std::string(kConfigMaps) + "/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("401 Unauthorized"));
}

TEST_F(KubeClientTest, AKubeconfigWithATokenReachesTheServer) {
  StartServer();
  const std::string kubeconfig =
      dir_.Write("kubeconfig", absl::StrCat(R"(
apiVersion: v1
kind: Config
current-context: test
contexts:
- name: test
  context: {cluster: fake, user: robot, namespace: fns}
clusters:
- name: fake
  cluster:
    server: )",
                                            server_->url(), R"(
    certificate-authority-data: )",
                                            absl::Base64Escape(pki_.ca_pem), R"(
users:
- name: robot
  user: {token: token-1}
)"));
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = Client(*config);
  EXPECT_EQ(client->default_namespace(), "fns");
  absl::StatusOr<boost::json::object> applied = client->Apply(ConfigMap("a"));
  EXPECT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(server_->Requests().back().user, "token");
}

TEST_F(KubeClientTest, AKubeconfigWithAClientCertificateAuthenticatesWithIt) {
  StartServer({.client_ca_pem = pki_.ca_pem});
  // Relative paths are relative to the kubeconfig's directory, where MakeTestPki wrote the files.
  const std::string kubeconfig =
      dir_.Write("kubeconfig", absl::StrCat(R"(
apiVersion: v1
kind: Config
current-context: test
contexts:
- name: test
  context: {cluster: fake, user: control}
clusters:
- name: fake
  cluster: {server: ")",
                                            server_->url(), R"(", certificate-authority: ca.crt}
users:
- name: control
  user: {client-certificate: client.crt, client-key: client.key}
)"));
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<boost::json::object> applied = Client(*config)->Apply(ConfigMap("a"));
  EXPECT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(server_->Requests().back().user, "eofaas-control");

  // Without the certificate, and without a token, the same server says who it does not know.
  KubeConfig anonymous = *config;
  anonymous.client_certificate_pem.clear();
  anonymous.client_key_pem.clear();
  EXPECT_EQ(Client(anonymous)->Apply(ConfigMap("b")).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(KubeClientTest, TheServerCertificateMustChainToTheConfiguredCa) {
  StartServer();
  KubeConfig config = Config();
  config.certificate_authority_pem = pki_.other_ca_pem;
  absl::StatusOr<boost::json::object> got = Client(config)->Get(std::string(kConfigMaps) + "/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(server_->Requests().empty());

  config.insecure_skip_tls_verify = true;
  EXPECT_EQ(Client(config)->Get(std::string(kConfigMaps) + "/a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KubeClientTest, TheServerCertificateMustNameTheServer) {
  // Signed by the right CA, but for another name than 127.0.0.1.
  StartServer(
      {.certificate_pem = pki_.elsewhere_certificate_pem, .key_pem = pki_.elsewhere_key_pem});
  absl::StatusOr<boost::json::object> got = Client(Config())->Get(std::string(kConfigMaps) + "/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(server_->Requests().empty());
}

TEST_F(KubeClientTest, ASilentServerMeetsTheDeadline) {
  // Accepts connections (the kernel does) and never answers the TLS handshake.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  KubeConfig config{.server = absl::StrCat("https://127.0.0.1:", silent.local_endpoint().port()),
                    .certificate_authority_pem = pki_.ca_pem,
                    .token = kToken};
  auto client = Client(config, {.request_timeout = absl::Milliseconds(300)});
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<boost::json::object> got = client->Get(std::string(kConfigMaps) + "/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(KubeClientCreateTest, RejectsAServerThatIsNotHttps) {
  absl::StatusOr<std::unique_ptr<KubeClient>> client =
      KubeClient::Create({.server = "http://127.0.0.1:8080"});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("server"));
}

}  // namespace
}  // namespace eofaas::control::k8s
