// What the rendered objects promise beyond their golden files: replica and autoscaling rules,
// names and labels that Kubernetes accepts, the registry secret's content, and the errors of an
// inconsistent spec.
#include "control/k8s/render.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/names.h"
#include "control/k8s/names.h"

namespace eofaas::control::k8s {
namespace {

FunctionGeneration Generation(const std::string& function = "ndvi") {
  return {.namespace_name = "eofaas-functions",
          .function = function,
          .uid = "uid-1",
          .generation = 4,
          .deployment_name = common::DeploymentName(function, "uid-1", 4),
          .template_name = "python3"};
}

RegistryConfig Registry() { return {.server = "registry.example.com"}; }

WorkloadSpec Workload(int min_replicas, int max_replicas) {
  WorkloadSpec spec;
  spec.image = "registry.example.com/eofaas/ndvi:sha256-ab";
  spec.min_replicas = min_replicas;
  spec.max_replicas = max_replicas;
  return spec;
}

std::vector<std::string> Kinds(const std::vector<YAML::Node>& objects) {
  std::vector<std::string> kinds;
  for (const auto& object : objects) kinds.push_back(object["kind"].as<std::string>());
  return kinds;
}

TEST(KubernetesWorkloadTest, FixedReplicasSetSpecReplicasAndNoAutoscaler) {
  auto objects = RenderWorkload(Generation(), Workload(3, 3), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  EXPECT_EQ(Kinds(*objects), (std::vector<std::string>{"Deployment", "Service"}));
  EXPECT_EQ((*objects)[0]["spec"]["replicas"].as<int>(), 3);
}

TEST(KubernetesWorkloadTest, ZeroMinimumRunsOneReplicaLikeTheLocalRuntime) {
  for (int max : {0, 1}) {
    auto objects = RenderWorkload(Generation(), Workload(0, max), Registry());
    ASSERT_TRUE(objects.ok()) << objects.status();
    EXPECT_EQ(objects->size(), 2u) << max;
    EXPECT_EQ((*objects)[0]["spec"]["replicas"].as<int>(), 1) << max;
  }
}

TEST(KubernetesWorkloadTest, ARangeGetsAnAutoscalerAndLeavesReplicasToIt) {
  auto objects = RenderWorkload(Generation(), Workload(0, 4), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(Kinds(*objects),
            (std::vector<std::string>{"Deployment", "Service", "HorizontalPodAutoscaler"}));
  const YAML::Node& deployment = (*objects)[0];
  const YAML::Node& hpa = (*objects)[2];
  EXPECT_FALSE(deployment["spec"]["replicas"].IsDefined());
  EXPECT_EQ(hpa["apiVersion"].as<std::string>(), "autoscaling/v2");
  EXPECT_EQ(hpa["spec"]["minReplicas"].as<int>(), 1);
  EXPECT_EQ(hpa["spec"]["maxReplicas"].as<int>(), 4);
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["name"].as<std::string>(),
            deployment["metadata"]["name"].as<std::string>());
}

TEST(KubernetesWorkloadTest, TheServiceSelectsExactlyThePodsOfItsGeneration) {
  auto objects = RenderWorkload(Generation(), Workload(1, 1), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node& deployment = (*objects)[0];
  const YAML::Node& service = (*objects)[1];
  const YAML::Node pod_labels = deployment["spec"]["template"]["metadata"]["labels"];
  for (const YAML::Node& selector :
       {deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]}) {
    ASSERT_EQ(selector.size(), 2u);
    for (const auto& entry : selector) {
      EXPECT_EQ(pod_labels[entry.first.as<std::string>()].as<std::string>(),
                entry.second.as<std::string>());
    }
  }
  EXPECT_EQ(service["spec"]["selector"]["app.kubernetes.io/instance"].as<std::string>(),
            Generation().deployment_name);
  EXPECT_EQ(service["spec"]["type"].as<std::string>(), "ClusterIP");
}

TEST(KubernetesWorkloadTest, LabelsAreValidAndNameTheFunctionGenerationAndManager) {
  FunctionGeneration generation = Generation();
  generation.template_name = "Python 3 (sci)";
  auto objects = RenderWorkload(generation, Workload(1, 1), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node labels = (*objects)[0]["metadata"]["labels"];
  EXPECT_EQ(labels["app.kubernetes.io/name"].as<std::string>(), "ndvi");
  EXPECT_EQ(labels["app.kubernetes.io/instance"].as<std::string>(), generation.deployment_name);
  EXPECT_EQ(labels["app.kubernetes.io/managed-by"].as<std::string>(), "eofaas");
  EXPECT_EQ(labels["app.kubernetes.io/component"].as<std::string>(), "function");
  EXPECT_EQ(labels["eofaas.io/function"].as<std::string>(), "ndvi");
  EXPECT_EQ(labels["eofaas.io/template"].as<std::string>(), "Python-3--sci");
  for (const auto& entry : labels) {
    EXPECT_TRUE(IsLabelValue(entry.second.as<std::string>())) << entry.first.as<std::string>();
  }
  EXPECT_EQ((*objects)[0]["metadata"]["annotations"]["eofaas.io/generation"].as<std::string>(),
            "4");
}

TEST(KubernetesWorkloadTest, PodsRunHardened) {
  auto objects = RenderWorkload(Generation(), Workload(1, 1), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node pod = (*objects)[0]["spec"]["template"]["spec"];
  EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>());
  EXPECT_EQ(pod["imagePullSecrets"][0]["name"].as<std::string>(), "eofaas-registry");
  const YAML::Node container = pod["containers"][0];
  const YAML::Node security = container["securityContext"];
  EXPECT_TRUE(security["runAsNonRoot"].as<bool>());
  EXPECT_TRUE(security["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(security["allowPrivilegeEscalation"].as<bool>());
  EXPECT_EQ(security["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_EQ(security["seccompProfile"]["type"].as<std::string>(), "RuntimeDefault");
  EXPECT_EQ(container["volumeMounts"][0]["mountPath"].as<std::string>(), "/tmp");
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(container["ports"][0]["containerPort"].as<int>(), 8080);
  const YAML::Node strategy = (*objects)[0]["spec"]["strategy"];
  EXPECT_EQ(strategy["rollingUpdate"]["maxUnavailable"].as<int>(), 0);
}

TEST(KubernetesWorkloadTest, LivenessOutlastsTheDrain) {
  WorkloadSpec spec = Workload(1, 1);
  spec.drain_timeout = absl::Seconds(95);
  auto objects = RenderWorkload(Generation(), spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node pod = (*objects)[0]["spec"]["template"]["spec"];
  const YAML::Node liveness = pod["containers"][0]["livenessProbe"];
  EXPECT_GT(liveness["periodSeconds"].as<int>() * liveness["failureThreshold"].as<int>(), 95);
  EXPECT_EQ(pod["terminationGracePeriodSeconds"].as<int>(), 100);
}

TEST(KubernetesWorkloadTest, EnvironmentValuesSurviveKubernetesExpansion) {
  WorkloadSpec spec = Workload(1, 1);
  spec.env = {{"PATTERN", "$(HOME)$"}};
  auto objects = RenderWorkload(Generation(), spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node env = (*objects)[0]["spec"]["template"]["spec"]["containers"][0]["env"];
  const YAML::Node last = env[env.size() - 1];
  EXPECT_EQ(last["name"].as<std::string>(), "PATTERN");
  EXPECT_EQ(last["value"].as<std::string>(), "$$(HOME)$$");
}

TEST(KubernetesWorkloadTest, RejectsAnInconsistentSpecNamingTheField) {
  struct Case {
    WorkloadSpec spec;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({Workload(3, 2), "max_replicas"});
  cases.push_back({Workload(-1, 2), "min_replicas"});
  WorkloadSpec no_image = Workload(1, 1);
  no_image.image.clear();
  cases.push_back({no_image, "image"});
  WorkloadSpec reserved = Workload(1, 1);
  reserved.env = {{"EOFAAS_PORT", "1"}};
  cases.push_back({reserved, "env[EOFAAS_PORT]"});
  WorkloadSpec no_cpu = Workload(1, 3);
  no_cpu.resources.cpu_request.clear();
  cases.push_back({no_cpu, "resources.cpu_request"});
  WorkloadSpec no_concurrency = Workload(1, 1);
  no_concurrency.concurrency = 0;
  cases.push_back({no_concurrency, "concurrency"});
  for (const Case& c : cases) {
    auto objects = RenderWorkload(Generation(), c.spec, Registry());
    ASSERT_FALSE(objects.ok()) << c.field;
    EXPECT_EQ(objects.status().code(), absl::StatusCode::kInvalidArgument) << objects.status();
    EXPECT_TRUE(absl::StartsWith(objects.status().message(), c.field + ":")) << objects.status();
  }
}

BuildSpec Build() {
  BuildSpec spec;
  spec.image = "registry.example.com/eofaas/ndvi:sha256-ab";
  spec.context_archive = "archive";
  return spec;
}

TEST(KubernetesBuildTest, TheJobRunsOnceWithinItsDeadlineAndPushesWithThePullSecret) {
  for (BuildTool tool : {BuildTool::kBuildKit, BuildTool::kKaniko}) {
    BuildSpec spec = Build();
    spec.tool = tool;
    auto objects = RenderBuild(Generation(), spec, Registry());
    ASSERT_TRUE(objects.ok()) << objects.status();
    ASSERT_EQ(Kinds(*objects), (std::vector<std::string>{"ConfigMap", "Job"}));
    const YAML::Node job = (*objects)[1];
    const std::string name = RoleName(Generation().deployment_name, "build");
    EXPECT_EQ(job["metadata"]["name"].as<std::string>(), name);
    EXPECT_EQ((*objects)[0]["metadata"]["name"].as<std::string>(), name);
    EXPECT_EQ(job["spec"]["activeDeadlineSeconds"].as<int>(), 900);
    EXPECT_EQ(job["spec"]["backoffLimit"].as<int>(), 1);
    const YAML::Node pod = job["spec"]["template"]["spec"];
    EXPECT_EQ(pod["restartPolicy"].as<std::string>(), "Never");
    EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>());
    bool mounts_secret = false;
    for (const auto& volume : pod["volumes"]) {
      if (volume["secret"]) {
        EXPECT_EQ(volume["secret"]["secretName"].as<std::string>(), "eofaas-registry");
        EXPECT_EQ(volume["secret"]["items"][0]["key"].as<std::string>(), ".dockerconfigjson");
        mounts_secret = true;
      }
    }
    EXPECT_TRUE(mounts_secret);
    EXPECT_EQ(job["metadata"]["labels"]["app.kubernetes.io/component"].as<std::string>(), "build");
  }
}

TEST(KubernetesBuildTest, BuildKitRunsDaemonlessAndRootless) {
  auto objects = RenderBuild(Generation(), Build(), Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const YAML::Node pod = (*objects)[1]["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  const YAML::Node build = pod["containers"][0];
  EXPECT_EQ(build["command"][0].as<std::string>(), "buildctl-daemonless.sh");
  EXPECT_EQ(build["image"].as<std::string>(), std::string(kDefaultBuildKitImage));
}

TEST(KubernetesBuildTest, AnObjectStoreURLReplacesTheConfigMap) {
  BuildSpec spec = Build();
  spec.context_archive.clear();
  spec.context_url = "https://objects.example.com/ctx.tar.gz";
  for (BuildTool tool : {BuildTool::kBuildKit, BuildTool::kKaniko}) {
    spec.tool = tool;
    auto objects = RenderBuild(Generation(), spec, Registry());
    ASSERT_TRUE(objects.ok()) << objects.status();
    ASSERT_EQ(Kinds(*objects), (std::vector<std::string>{"Job"}));
    std::ostringstream args;
    args << (*objects)[0]["spec"]["template"]["spec"]["containers"][0]["args"];
    EXPECT_TRUE(absl::StrContains(args.str(), spec.context_url)) << args.str();
  }
}

TEST(KubernetesBuildTest, AContextLargerThanAConfigMapHoldsIsAClearError) {
  BuildSpec spec = Build();
  spec.context_archive.assign(kMaxConfigMapBytes - 14, 'x');  // 14: "context.tar.gz"
  EXPECT_TRUE(RenderBuild(Generation(), spec, Registry()).ok());
  spec.context_archive.push_back('x');
  auto objects = RenderBuild(Generation(), spec, Registry());
  ASSERT_FALSE(objects.ok());
  EXPECT_EQ(objects.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(objects.status().message(), "1048577 bytes")) << objects.status();
  EXPECT_TRUE(absl::StrContains(objects.status().message(), "object store")) << objects.status();
}

TEST(KubernetesBuildTest, RejectsAnInconsistentSpecNamingTheField) {
  BuildSpec both = Build();
  both.context_url = "https://objects.example.com/ctx.tar.gz";
  BuildSpec neither = Build();
  neither.context_archive.clear();
  BuildSpec plain_http = neither;
  plain_http.context_url = "http://objects.example.com/ctx.tar.gz";
  BuildSpec no_image = Build();
  no_image.image.clear();
  BuildSpec no_deadline = Build();
  no_deadline.deadline = absl::ZeroDuration();
  for (const auto& [spec, field] :
       std::vector<std::pair<BuildSpec, std::string>>{{both, "context_archive"},
                                                      {neither, "context_archive"},
                                                      {plain_http, "context_url"},
                                                      {no_image, "image"},
                                                      {no_deadline, "deadline"}}) {
    auto objects = RenderBuild(Generation(), spec, Registry());
    ASSERT_FALSE(objects.ok()) << field;
    EXPECT_EQ(objects.status().code(), absl::StatusCode::kInvalidArgument) << objects.status();
    EXPECT_TRUE(absl::StartsWith(objects.status().message(), field + ":")) << objects.status();
  }
}

TEST(ImageReferenceTest, TagsTheImageWithTheBundlesContentAddress) {
  EXPECT_EQ(ImageReference(Registry(), "ndvi", "sha256:0a1b"),
            "registry.example.com/eofaas/ndvi:sha256-0a1b");
  RegistryConfig flat = Registry();
  flat.repository.clear();
  EXPECT_EQ(ImageReference(flat, "ndvi", "sha256:0a1b"), "registry.example.com/ndvi:sha256-0a1b");
}

// The Secret's .dockerconfigjson, decoded and parsed (JSON is YAML).
YAML::Node DockerConfig(const YAML::Node& secret) {
  std::string json;
  EXPECT_TRUE(absl::Base64Unescape(secret["data"][".dockerconfigjson"].as<std::string>(), &json));
  return YAML::Load(json);
}

TEST(RegistrySecretTest, HoldsADockerConfigWithAuths) {
  auto secret = RenderRegistrySecret("eofaas-functions", Registry(), {"robot", "s3cret"});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ((*secret)["type"].as<std::string>(), "kubernetes.io/dockerconfigjson");
  EXPECT_EQ((*secret)["metadata"]["name"].as<std::string>(), "eofaas-registry");
  EXPECT_EQ((*secret)["metadata"]["namespace"].as<std::string>(), "eofaas-functions");
  YAML::Node entry = DockerConfig(*secret)["auths"]["registry.example.com"];
  EXPECT_EQ(entry["username"].as<std::string>(), "robot");
  EXPECT_EQ(entry["password"].as<std::string>(), "s3cret");
  EXPECT_EQ(entry["auth"].as<std::string>(), absl::Base64Escape("robot:s3cret"));
}

TEST(RegistrySecretTest, EncodesAnyPasswordExactly) {
  const std::string password = "q\"uo\\te\nnew\tline\x01 é ${x}";
  auto secret = RenderRegistrySecret("ns", Registry(), {"u", password});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(DockerConfig(*secret)["auths"]["registry.example.com"]["password"].as<std::string>(),
            password);
}

TEST(RegistrySecretTest, ErrorsAndPrintingNeverShowThePassword) {
  const std::string password = "hunter2-do-not-show";
  RegistryConfig no_server = Registry();
  no_server.server.clear();
  for (const auto& [registry, credentials] :
       std::vector<std::pair<RegistryConfig, RegistryCredentials>>{
           {no_server, {"u", password}}, {Registry(), {"", password}}, {Registry(), {"u", ""}}}) {
    auto secret = RenderRegistrySecret("ns", registry, credentials);
    ASSERT_FALSE(secret.ok());
    EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(absl::StrContains(secret.status().ToString(), password)) << secret.status();
  }
  std::ostringstream printed;
  printed << RegistryCredentials{"robot", password};
  EXPECT_EQ(printed.str(), "{username: robot, password: <redacted>}");
}

}  // namespace
}  // namespace eofaas::control::k8s
