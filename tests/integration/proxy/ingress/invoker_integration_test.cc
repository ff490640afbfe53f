// eofaas.v1.Invoker end to end: the real eofaas-proxy fans cursors out over python3 replicas
// running the python3-linecount example, learnt from the real eofaas-control or from an
// --endpoints file (with misbehaving replicas beside them), over files and over nginx.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "tests/integration/proxy/dispatch/replica_processes.h"
#include "tests/integration/proxy/ingress/proxy_process.h"
#include "tests/support/control_plane.h"
#include "tests/support/eventually.h"
#include "tests/support/grpc_health.h"
#include "tests/support/http_client.h"
#include "tests/support/nginx.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {
namespace {

namespace fs = std::filesystem;
using eofaas::v1::DataCursor;
using eofaas::v1::InvokeRequest;
using eofaas::v1::InvokeResponse;
using eofaas::v1::MapRequest;
using eofaas::v1::MapResponse;

const std::string kExamples = EOFAAS_SOURCE_DIR "/examples/data";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What `wc -l` says: the newlines.
int64_t CountLines(const std::string& path) {
  const std::string text = ReadFile(path);
  return std::count(text.begin(), text.end(), '\n');
}

// A text file of about `bytes` bytes: mostly short lines, some empty, and every 40th line
// several kilobytes long (longer than the smallest chunks the tests use).
void WriteText(const std::string& path, size_t bytes) {
  std::mt19937 random(42);
  std::string text;
  for (int line = 0; text.size() < bytes; ++line) {
    size_t length = line % 40 == 0 ? 1000 + random() % 4000 : random() % 120;
    for (size_t i = 0; i < length; ++i) text.push_back(static_cast<char>('a' + random() % 26));
    text.push_back('\n');
  }
  std::ofstream(path, std::ios::binary) << text;
}

google::protobuf::Struct Json(const std::string& text) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok()) << text;
  return parsed;
}

double Number(const std::string& json, const std::string& field) {
  auto fields = Json(json).fields();
  return fields.count(field) ? fields.at(field).number_value() : -1;
}

// The lines a LINES-framed chunk [offset, offset+length) of `text` owns: those starting in it.
int64_t OwnedLines(const std::string& text, int64_t offset, int64_t length) {
  const int64_t end = std::min<int64_t>(offset + length, text.size());
  int64_t lines = 0;
  for (int64_t at = offset; at < end; ++at) lines += at == 0 || text[at - 1] == '\n';
  return lines;
}

// The lines linecount's items add up to; each item has to be a result.
int64_t SumOfLines(const std::vector<eofaas::v1::MapItem>& items) {
  int64_t lines = 0;
  for (const auto& item : items) {
    EXPECT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
    lines += static_cast<int64_t>(Number(item.result(), "lines"));
  }
  return lines;
}

DataCursor FileCursor(const std::string& path) {
  DataCursor cursor;
  cursor.set_uri(absl::StrCat("file://", path));
  cursor.set_framing(eofaas::v1::FRAMING_LINES);
  return cursor;
}

// A Map of linecount over `input` in LINES-framed chunks of `chunk_bytes`.
MapRequest LinesMap(const std::string& input, int64_t chunk_bytes) {
  MapRequest request;
  request.set_function("linecount");
  request.add_inputs(input);
  request.mutable_partitioning()->set_chunk_bytes(chunk_bytes);
  request.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_LINES);
  return request;
}

// A replica as an --endpoints file names it.
struct Endpoint {
  std::string address;
  int concurrency;
};

struct MapRun {
  grpc::Status status;
  std::vector<MapResponse> events;
  // The items of the `items` events, in the order they came.
  std::vector<eofaas::v1::MapItem> items;

  void Add(const MapResponse& event) {
    events.push_back(event);
    for (const auto& item : event.items().items()) items.push_back(item);
  }
};

// A proxy, with helpers to call it. It may read the examples' data and a temporary data root.
class ProxyTest : public ::testing::Test {
 protected:
  void StartProxy(std::vector<std::string> flags) {
    flags.push_back("--data_root=" + data_root_);
    flags.push_back("--data_root=" + kExamples);
    auto proxy = ProxyProcess::Start(std::move(flags), dir_ / "proxy.log");
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  // Starts the proxy with an --endpoints file naming these replicas of linecount.
  void StartProxyWithEndpoints(const std::vector<Endpoint>& replicas,
                               std::vector<std::string> flags = {}) {
    std::string yaml = "functions:\n  linecount:\n";
    for (const auto& replica : replicas) {
      absl::StrAppend(&yaml, "    - address: ", replica.address,
                      "\n      concurrency: ", replica.concurrency, "\n");
    }
    flags.push_back("--endpoints=" + dir_.Write("endpoints.yaml", yaml));
    StartProxy(std::move(flags));
  }

  // The python3 runtime serving the linecount example, `concurrency` invocations at once, with
  // `env` added to its environment.
  std::unique_ptr<ReplicaProcess> StartLinecount(const std::string& name, int concurrency = 4,
                                                 const std::vector<std::string>& env = {}) {
    std::vector<std::string> environment = {
        "PATH=/usr/bin:/bin", "EOFAAS_PORT=0", "EOFAAS_FUNCTION=linecount",
        absl::StrCat("EOFAAS_CONCURRENCY=", concurrency),
        "EOFAAS_FUNCTION_DIR=" EOFAAS_SOURCE_DIR "/examples/python3-linecount"};
    environment.insert(environment.end(), env.begin(), env.end());
    auto replica = ReplicaProcess::Start(
        {"/usr/bin/python3", "-B", EOFAAS_SOURCE_DIR "/templates/python3/runtime/server.py"},
        std::move(environment), dir_ / (name + ".log"), "/healthz");
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? *std::move(replica) : nullptr;
  }

  // nginx serving www/ (outside every data root: replicas can only read it over http(s)), where
  // `name` is about `bytes` of text lines.
  std::unique_ptr<Nginx> ServeText(const std::string& name, size_t bytes) {
    fs::create_directories(dir_ / "www");
    WriteText(dir_ / ("www/" + name), bytes);
    auto nginx = Nginx::Start(dir_ / "www", dir_ / "nginx");
    EXPECT_TRUE(nginx.ok()) << nginx.status();
    return nginx.ok() ? *std::move(nginx) : nullptr;
  }

  // tests/fixtures/fault_replica.py steered by `env`.
  std::unique_ptr<ReplicaProcess> StartFault(const std::string& name,
                                             std::vector<std::string> env) {
    auto replica = StartFaultReplica(dir_, name, std::move(env));
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? *std::move(replica) : nullptr;
  }

  void TearDown() override {
    if (HasFailure() && proxy_) std::cerr << "proxy log:\n" << proxy_->Log();
  }

  grpc::Status Invoke(const InvokeRequest& request, InvokeResponse& response) {
    return proxy_->invoker().Invoke(Context(absl::Seconds(20)).get(), request, &response);
  }

  InvokeRequest Request(const std::string& function, const DataCursor& cursor) {
    InvokeRequest request;
    request.set_function(function);
    *request.mutable_cursor() = cursor;
    return request;
  }

  MapRun Map(const MapRequest& request) {
    MapRun run;
    auto context = Context(absl::Seconds(60));
    auto reader = proxy_->invoker().Map(context.get(), request);
    MapResponse event;
    while (reader->Read(&event)) run.Add(event);
    run.status = reader->Finish();
    return run;
  }

  // Checks the shape of a successful Map: planned, `items` events that hold one item per cursor
  // (each index once), done; and returns the items by index.
  std::vector<eofaas::v1::MapItem> Items(const MapRun& run, bool ordered = false) {
    std::vector<eofaas::v1::MapItem> items;
    EXPECT_TRUE(run.status.ok()) << run.status.error_message();
    if (run.events.size() < 2) {
      ADD_FAILURE() << "only " << run.events.size() << " events";
      return items;
    }
    EXPECT_TRUE(run.events.front().has_planned());
    EXPECT_TRUE(run.events.back().has_done());
    for (size_t i = 1; i + 1 < run.events.size(); ++i) {
      EXPECT_GT(run.events[i].items().items_size(), 0) << "event " << i;
    }
    const int64_t planned = run.events.front().planned().items();
    EXPECT_EQ(static_cast<int64_t>(run.items.size()), planned);
    items.resize(planned);
    std::set<int64_t> seen;
    for (size_t i = 0; i < run.items.size(); ++i) {
      const auto& item = run.items[i];
      EXPECT_TRUE(seen.insert(item.index()).second) << "index " << item.index() << " twice";
      if (ordered) {
        EXPECT_EQ(item.index(), static_cast<int64_t>(i));
      }
      if (item.index() >= 0 && item.index() < planned) items[item.index()] = item;
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), planned);
    const auto& done = run.events.back().done();
    EXPECT_EQ(done.succeeded() + done.failed(), planned);
    return items;
  }

  TempDir dir_;
  const std::string data_root_ = [this] {
    fs::create_directories(dir_ / "data");
    return dir_ / "data";
  }();
  std::unique_ptr<ProxyProcess> proxy_;
};

// The real control plane runs the linecount example; the proxy follows its endpoints.
class ControlPlaneProxyTest : public ProxyTest {
 protected:
  // The function deployed as "linecount"; SetUp waits for its min_replicas.
  virtual eofaas::v1::Function Deployed() { return ExampleFunction("linecount"); }

  void SetUp() override {
    auto plane = ControlPlane::Start(
        {.data_dir = dir_ / "control",
         .flags = {absl::StrCat("--data_root=", data_root_), "--data_root=" + kExamples}});
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = *std::move(plane);
    eofaas::v1::CreateFunctionRequest create;
    *create.mutable_function() = Deployed();
    eofaas::v1::CreateFunctionResponse created;
    grpc::Status status = plane_->provision().CreateFunction(Context().get(), create, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    auto ready =
        plane_->WaitReady("linecount", std::max(1, create.function().scaling().min_replicas()));
    ASSERT_TRUE(ready.ok()) << ready.status() << "\n" << plane_->Log();
    StartProxy({"--control=" + plane_->grpc_address()});
  }

  void TearDown() override {
    ProxyTest::TearDown();
    // The control plane is not under test: killing it and its replicas is quicker than a drain.
    if (plane_) {
      const std::string instance = plane_->instance();
      plane_->Kill();
      KillReplicaGroups(instance);
    }
  }

  std::unique_ptr<ControlPlane> plane_;
};

// One python3 runtime serving the linecount example, named to the proxy by --endpoints.
class StaticEndpointsProxyTest : public ProxyTest {
 protected:
  void SetUp() override {
    replica_ = StartLinecount("replica");
    ASSERT_TRUE(replica_);
    StartProxyWithEndpoints({{replica_->address(), 4}});
  }

  std::unique_ptr<ReplicaProcess> replica_;
};

// Replicas the tests start themselves, named to the proxy by --endpoints: the linecount runtime
// beside misbehaving ones (tests/fixtures/fault_replica.py).
using FaultyEndpointsProxyTest = ProxyTest;

// linecount, except that a cursor whose part is args["hold_from"] or later waits until the file
// args["release"] exists: the test decides when those cursors may finish.
constexpr char kHoldingHandler[] = R"PY(import os
import time

import linecount


def handle(data, ctx):
    hold_from = ctx.args.get("hold_from")
    if hold_from is not None and (data.cursor.part or 0) >= hold_from:
        while not os.path.exists(ctx.args["release"]):
            time.sleep(0.01)
    return linecount.handle(data, ctx)
)PY";

// The control plane runs linecount behind kHoldingHandler on two replicas of four slots each.
class HeldReplicasProxyTest : public ControlPlaneProxyTest {
 protected:
  eofaas::v1::Function Deployed() override {
    eofaas::v1::Function function = ExampleFunction("linecount");
    auto& files = *function.mutable_files();
    files["linecount.py"] = files["handler.py"];
    files["handler.py"] = kHoldingHandler;
    function.mutable_scaling()->set_min_replicas(2);
    function.mutable_scaling()->set_target_concurrency(4);
    return function;
  }

  // Starts a Map over `path` in 1000-byte LINES chunks, `window` in flight, whose cursors from
  // part `hold_from` on wait for release_ to exist; reads `planned` and the items before them.
  std::unique_ptr<grpc::ClientReader<MapResponse>> StartHeldMap(grpc::ClientContext& context,
                                                                const std::string& path,
                                                                int hold_from, int window,
                                                                MapRun& run) {
    MapRequest request = LinesMap("file://" + path, 1000);
    request.set_max_in_flight(window);
    (*request.mutable_args()->mutable_fields())["hold_from"].set_number_value(hold_from);
    (*request.mutable_args()->mutable_fields())["release"].set_string_value(release_);
    auto reader = proxy_->invoker().Map(&context, request);
    MapResponse event;
    while (static_cast<int>(run.items.size()) < hold_from && reader->Read(&event)) run.Add(event);
    return reader;
  }

  // Lets the held cursors go, then reads the rest of the Map.
  void Release(grpc::ClientReader<MapResponse>& reader, MapRun& run) {
    std::ofstream(release_).close();
    MapResponse event;
    while (reader.Read(&event)) run.Add(event);
    run.status = reader.Finish();
  }

  const std::string release_ = data_root_ + "/release";
};

TEST_F(ControlPlaneProxyTest, InvokeRunsTheFunctionOnAFileCursor) {
  const std::string scene = kExamples + "/scenes/2024-03.txt";
  InvokeResponse response;
  grpc::Status status = Invoke(Request("linecount", FileCursor(scene)), response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outcome_case(), InvokeResponse::kResult);
  EXPECT_EQ(Number(response.result(), "lines"), CountLines(scene));
  EXPECT_EQ(Number(response.result(), "bytes"), fs::file_size(scene));
  EXPECT_EQ(response.attempts(), 1);
  EXPECT_TRUE(absl::StartsWith(response.replica(), "127.0.0.1:")) << response.replica();
  EXPECT_GT(response.duration().nanos() + response.duration().seconds(), 0);

  // args reach the handler untouched.
  InvokeRequest filtered = Request("linecount", FileCursor(scene));
  (*filtered.mutable_args()->mutable_fields())["contains"].set_string_value("T32TQM");
  ASSERT_TRUE(Invoke(filtered, response).ok());
  int64_t matching = 0;
  for (absl::string_view line : absl::StrSplit(ReadFile(scene), '\n')) {
    matching += absl::StrContains(line, "T32TQM");
  }
  EXPECT_GT(matching, 0);
  EXPECT_EQ(Number(response.result(), "lines"), matching);

  // A handler's error is a successful call that carries it.
  InvokeRequest bad_args = Request("linecount", FileCursor(scene));
  (*bad_args.mutable_args()->mutable_fields())["contains"].set_number_value(5);
  status = Invoke(bad_args, response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outcome_case(), InvokeResponse::kError);
  EXPECT_EQ(response.error().type(), "FunctionError");
  EXPECT_TRUE(absl::StrContains(response.error().message(), "contains"))
      << response.error().message();
  EXPECT_TRUE(response.error().handled());
  EXPECT_EQ(response.attempts(), 1);

  // The metrics count both.
  auto metrics = HttpRequest(proxy_->metrics_address(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body, R"(eofaas_proxy_invocations_total{function="linecount",outcome="success"} 2)"))
      << metrics->body;
  EXPECT_TRUE(absl::StrContains(
      metrics->body,
      R"(eofaas_proxy_invocations_total{function="linecount",outcome="function_error"} 1)"));
  EXPECT_TRUE(absl::StrContains(
      metrics->body, R"(eofaas_proxy_invocation_duration_seconds_count{function="linecount"} 3)"));
  EXPECT_TRUE(
      absl::StrContains(metrics->body, R"(eofaas_proxy_map_items_total{outcome="success"} 0)"));
  EXPECT_TRUE(absl::StrContains(metrics->body, R"(grpc_method="Invoke")"));
}

TEST_F(ControlPlaneProxyTest, MapWithLinesFramingCountsEveryLineOnceForAnyChunkSize) {
  const std::string path = data_root_ + "/big.txt";
  WriteText(path, 2'500'000);
  const int64_t size = fs::file_size(path);
  const int64_t lines = CountLines(path);
  // 700 bytes is shorter than the long lines: many chunks own no line at all.
  for (int64_t chunk : {int64_t{700}, int64_t{64} << 10, int64_t{1} << 20}) {
    SCOPED_TRACE(absl::StrCat("chunk_bytes ", chunk));
    MapRequest request;
    request.set_function("linecount");
    request.add_inputs(absl::StrCat("file://", path));
    request.mutable_partitioning()->set_chunk_bytes(chunk);
    request.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_LINES);
    const absl::Time start = absl::Now();
    MapRun run = Map(request);
    std::vector<eofaas::v1::MapItem> items = Items(run);
    ASSERT_FALSE(items.empty());
    std::cerr << "chunk_bytes " << chunk << ": " << items.size() << " items in "
              << absl::Now() - start << "\n";
    EXPECT_EQ(run.events.front().planned().items(), (size + chunk - 1) / chunk);
    EXPECT_EQ(run.events.front().planned().bytes(), size);
    EXPECT_EQ(run.events.back().done().succeeded(), static_cast<int64_t>(items.size()));
    int64_t sum_lines = 0;
    int64_t sum_bytes = 0;
    for (const auto& item : items) {
      ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
      EXPECT_EQ(item.cursor().offset(), item.index() * chunk);
      sum_lines += static_cast<int64_t>(Number(item.result(), "lines"));
      sum_bytes += static_cast<int64_t>(Number(item.result(), "bytes"));
    }
    EXPECT_EQ(sum_lines, lines);
    EXPECT_EQ(sum_bytes, size);
  }

  // In index order, a few at a time.
  MapRequest ordered;
  ordered.set_function("linecount");
  ordered.add_inputs(absl::StrCat("file://", path));
  ordered.mutable_partitioning()->set_chunk_bytes(16 << 10);
  ordered.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_LINES);
  ordered.set_max_in_flight(3);
  ordered.set_ordered(true);
  std::vector<eofaas::v1::MapItem> items = Items(Map(ordered), /*ordered=*/true);
  int64_t sum_lines = 0;
  for (const auto& item : items) sum_lines += static_cast<int64_t>(Number(item.result(), "lines"));
  EXPECT_EQ(sum_lines, lines);
}

TEST_F(ControlPlaneProxyTest, MapOverDirectoriesRunsEveryFileBelowThem) {
  const std::string nested = data_root_ + "/set";
  fs::create_directories(nested + "/2024/03");
  std::ofstream(nested + "/a.txt") << "one\ntwo\n";
  std::ofstream(nested + "/2024/03/b.txt") << "three\nfour\nfive\n";
  MapRequest request;
  request.set_function("linecount");
  request.add_inputs("file://" + kExamples + "/scenes/");
  request.add_inputs("file://" + nested);
  request.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_LINES);
  request.set_ordered(true);
  MapRun run = Map(request);
  std::vector<eofaas::v1::MapItem> items = Items(run, /*ordered=*/true);
  ASSERT_EQ(items.size(), 5u);
  // Inputs in the order given, each one's files sorted by URI.
  const std::vector<std::string> expected = {
      kExamples + "/scenes/2024-03.txt", kExamples + "/scenes/2024-04.txt",
      kExamples + "/scenes/2024-05.txt", nested + "/2024/03/b.txt", nested + "/a.txt"};
  int64_t bytes = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string canonical = fs::canonical(expected[i]).string();
    EXPECT_EQ(items[i].cursor().uri(), "file://" + canonical);
    ASSERT_EQ(items[i].outcome_case(), eofaas::v1::MapItem::kResult) << items[i].ShortDebugString();
    EXPECT_EQ(Number(items[i].result(), "lines"), CountLines(expected[i]));
    bytes += fs::file_size(expected[i]);
  }
  EXPECT_EQ(run.events.front().planned().bytes(), bytes);
  EXPECT_EQ(run.events.back().done().succeeded(), 5);
  EXPECT_EQ(run.events.back().done().failed(), 0);
}

TEST_F(StaticEndpointsProxyTest, BadRequestsGetTheirCodes) {
  const DataCursor scene = FileCursor(kExamples + "/scenes/2024-03.txt");
  InvokeResponse response;
  auto invoke_status = [&](const InvokeRequest& request) { return Invoke(request, response); };

  grpc::Status status = invoke_status(Request("nope", scene));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  status = invoke_status(Request("Not_A_Name", scene));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "function:")) << status.error_message();
  InvokeRequest negative = Request("linecount", scene);
  negative.mutable_timeout()->set_seconds(-1);
  status = invoke_status(negative);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "timeout:")) << status.error_message();
  status = invoke_status(Request("linecount", DataCursor()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "cursor.uri")) << status.error_message();
  // Outside every data root, directly or through "..".
  status = invoke_status(Request("linecount", FileCursor("/etc/hostname")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  status = invoke_status(Request("linecount", FileCursor(data_root_ + "/../../../etc/hostname")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();

  auto map_status = [&](const MapRequest& request) {
    MapRun run = Map(request);
    EXPECT_TRUE(run.events.empty()) << "a rejected Map sends no event";
    return run.status;
  };
  MapRequest valid;
  valid.set_function("linecount");
  valid.add_inputs("file://" + kExamples + "/scenes/");
  MapRequest request = valid;
  request.set_function("nope");
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  request = valid;
  request.mutable_partitioning()->set_chunk_bytes(0);
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "partitioning.chunk_bytes:"))
      << status.error_message();
  request = valid;
  request.clear_inputs();
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "inputs:")) << status.error_message();
  request = valid;
  request.add_inputs("file:///etc/");
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "inputs[1]")) << status.error_message();
  request = valid;
  request.add_inputs("ftp://example.com/x");
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "inputs[1]")) << status.error_message();
  request = valid;
  request.set_max_in_flight(-1);
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "max_in_flight:")) << status.error_message();
  request = valid;
  request.mutable_item_timeout()->set_nanos(-5);
  status = map_status(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "item_timeout:")) << status.error_message();
}

TEST_F(ControlPlaneProxyTest, KeepsServingWhenTheControlPlaneDies) {
  const DataCursor scene = FileCursor(kExamples + "/scenes/2024-04.txt");
  InvokeResponse response;
  ASSERT_TRUE(Invoke(Request("linecount", scene), response).ok());
  plane_->Kill();  // the replicas live on; the proxy keeps the endpoints it knew
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(HealthCheck(proxy_->channel()), 1);
  for (int i = 0; i < 5; ++i) {
    grpc::Status status = Invoke(Request("linecount", scene), response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(Number(response.result(), "lines"), CountLines(kExamples + "/scenes/2024-04.txt"));
  }
  MapRequest request;
  request.set_function("linecount");
  request.add_inputs("file://" + kExamples + "/scenes/");
  EXPECT_EQ(Items(Map(request)).size(), 3u);
}

TEST_F(StaticEndpointsProxyTest, DrainsAMapInFlightOnSigterm) {
  const std::string path = data_root_ + "/drain.txt";
  WriteText(path, 200'000);  // long enough to outlast the signal, well within the drain's 5 s
  MapRequest request;
  request.set_function("linecount");
  request.add_inputs(absl::StrCat("file://", path));
  request.mutable_partitioning()->set_chunk_bytes(1000);
  request.mutable_partitioning()->set_framing(eofaas::v1::FRAMING_LINES);
  request.set_max_in_flight(2);
  auto context = Context(absl::Seconds(30));
  auto reader = proxy_->invoker().Map(context.get(), request);
  MapResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_planned());
  const int64_t planned = event.planned().items();
  proxy_->Terminate();
  // The Map started before the signal runs to its end; new calls are refused.
  EXPECT_TRUE(Eventually([&] { return HealthCheck(proxy_->channel()) != 1; }));
  int64_t items = 0;
  bool done = false;
  while (reader->Read(&event)) {
    items += event.items().items_size();
    done = event.has_done();
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(done);
  EXPECT_EQ(items, planned);
  const int exit_status = proxy_->Wait();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0)
      << common::DescribeWaitStatus(exit_status);
}

// nginx is the data store: the proxy sizes the object with HEAD and splits it because nginx takes
// byte ranges; the sandboxed replicas, on the host's loopback, read their chunks with Range.
TEST_F(ControlPlaneProxyTest, MapOverAnHttpObjectSplitsItIntoRanges) {
  auto nginx = ServeText("big.txt", 2'000'000);
  ASSERT_TRUE(nginx);
  const std::string path = dir_ / "www/big.txt";
  const int64_t size = fs::file_size(path);
  const int64_t lines = CountLines(path);
  int64_t total_items = 0;
  // 2000 bytes is shorter than most long lines: many chunks own no line at all.
  for (int64_t chunk : {int64_t{64} << 10, int64_t{2000}}) {
    SCOPED_TRACE(absl::StrCat("chunk_bytes ", chunk));
    const absl::Time start = absl::Now();
    MapRun run = Map(LinesMap(nginx->Url("big.txt"), chunk));
    std::vector<eofaas::v1::MapItem> items = Items(run);
    ASSERT_FALSE(items.empty());
    std::cerr << "http chunk_bytes " << chunk << ": " << items.size() << " items in "
              << absl::Now() - start << "\n";
    EXPECT_GT(items.size(), 1u);
    EXPECT_EQ(run.events.front().planned().items(), (size + chunk - 1) / chunk);
    EXPECT_EQ(run.events.front().planned().bytes(), size);
    EXPECT_EQ(run.events.back().done().succeeded(), static_cast<int64_t>(items.size()));
    int64_t sum_lines = 0;
    int64_t sum_bytes = 0;
    for (const auto& item : items) {
      ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
      EXPECT_EQ(item.cursor().uri(), nginx->Url("big.txt"));
      EXPECT_EQ(item.cursor().offset(), item.index() * chunk);
      EXPECT_EQ(item.cursor().size(), size);
      EXPECT_FALSE(item.cursor().etag().empty());  // nginx's ETag, from the HEAD
      sum_lines += static_cast<int64_t>(Number(item.result(), "lines"));
      sum_bytes += static_cast<int64_t>(Number(item.result(), "bytes"));
    }
    EXPECT_EQ(sum_lines, lines);
    EXPECT_EQ(sum_bytes, size);
    total_items += items.size();
  }

  // One HEAD per Map, and only ranged GETs, at least one per item (nginx logs a request once it
  // is done with it, which may be just after the replica had what it needed).
  std::vector<std::string> heads;
  std::vector<std::string> gets;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);;) {
    heads.clear();
    gets.clear();
    for (absl::string_view line : absl::StrSplit(nginx->AccessLog(), '\n', absl::SkipEmpty())) {
      (absl::StartsWith(line, "HEAD ") ? heads : gets).emplace_back(line);
    }
    if (static_cast<int64_t>(gets.size()) >= total_items || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(heads.size(), 2u) << nginx->AccessLog();
  EXPECT_GE(static_cast<int64_t>(gets.size()), total_items);
  for (const auto& get : gets) {
    EXPECT_TRUE(absl::StartsWith(get, "GET /big.txt \"bytes=")) << get;
    EXPECT_TRUE(absl::StrContains(get, "\" 206 ")) << get;
  }
}

// A store that refuses HEAD (403, as S3 does for a URL presigned for GET): the proxy sizes the
// object with a GET of its first byte and splits it; the replica reads its ranges with GET.
TEST_F(ProxyTest, MapOverAnObjectWhoseStoreRefusesHead) {
  auto nginx = ServeText("presigned.txt", 200'000);
  ASSERT_TRUE(nginx);
  const std::string path = dir_ / "www/presigned.txt";
  const int64_t size = fs::file_size(path);
  auto replica = StartLinecount("replica");
  ASSERT_TRUE(replica);
  StartProxyWithEndpoints({{replica->address(), 4}});
  const int64_t chunk = 16 << 10;
  MapRun run = Map(LinesMap(nginx->NoHeadUrl("presigned.txt"), chunk));
  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(run.events.front().planned().bytes(), size);
  EXPECT_EQ(static_cast<int64_t>(items.size()), (size + chunk - 1) / chunk);
  EXPECT_FALSE(items[0].cursor().etag().empty());  // nginx's ETag, from the GET
  EXPECT_EQ(SumOfLines(items), CountLines(path));
  // The proxy's two requests come first: the refused HEAD, then the first byte.
  std::vector<std::string> log = absl::StrSplit(nginx->AccessLog(), '\n', absl::SkipEmpty());
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0], "HEAD /no-head/presigned.txt \"-\" 403 0");
  EXPECT_TRUE(absl::StartsWith(log[1], "GET /no-head/presigned.txt \"bytes=0-0\" 206 ")) << log[1];
}

// An object store whose certificate no public authority signed (nginx's self-signed one): the
// proxy trusts it for its HEAD through --tls_ca_file, the replica for its ranged GETs through
// SSL_CERT_FILE. The lines add up as over http://.
TEST_F(ProxyTest, MapOverAnHttpsObjectTrustsTheCaFile) {
  auto nginx = ServeText("tls.txt", 200'000);
  ASSERT_TRUE(nginx);
  const std::string ca_file = nginx->certificate();
  auto replica = StartLinecount("replica", 4, {"SSL_CERT_FILE=" + ca_file});
  ASSERT_TRUE(replica);
  StartProxyWithEndpoints({{replica->address(), 4}}, {"--tls_ca_file=" + ca_file});
  MapRun run = Map(LinesMap(nginx->HttpsUrl("tls.txt"), 16 << 10));
  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_GT(items.size(), 1u);  // split: nginx reads ranges over TLS too
  EXPECT_EQ(items[0].cursor().uri(), nginx->HttpsUrl("tls.txt"));
  EXPECT_EQ(SumOfLines(items), CountLines(dir_ / "www/tls.txt"));
}

// A listen address whose port is out of range stops the proxy at start, rather than letting gRPC
// listen on the port modulo 65536.
TEST_F(ProxyTest, AListenPortOutOfRangeStopsTheProxy) {
  for (const std::string flag : {"--listen=127.0.0.1:99999", "--metrics_listen=127.0.0.1:65536"}) {
    auto refused = ProxyProcess::Start(
        {"--endpoints=" + dir_.Write("none.yaml", "functions: {}\n"), flag}, dir_ / "refused.log");
    ASSERT_FALSE(refused.ok()) << flag;
    EXPECT_TRUE(absl::StrContains(refused.status().message(), "port from 0 to 65535"))
        << refused.status();
  }
}

// With --pipeline_depth the requests of a Map that start together share connections to the
// python3 runtime, which answers them in order: the lines still add up, on two replicas. A depth
// outside [1, 64] stops the proxy at start.
TEST_F(ProxyTest, PipelinedMapOverRealReplicasCountsEveryLineOnce) {
  for (const std::string depth : {"0", "65"}) {
    auto refused = ProxyProcess::Start(
        {"--endpoints=" + dir_.Write("none.yaml", "functions: {}\n"), "--pipeline_depth=" + depth},
        dir_ / "refused.log");
    ASSERT_FALSE(refused.ok()) << depth;
    EXPECT_TRUE(absl::StrContains(refused.status().message(),
                                  absl::StrCat("pipeline_depth: ", depth, " is not in [1, 64]")))
        << refused.status();
  }

  const std::string path = data_root_ + "/pipelined.txt";
  WriteText(path, 400'000);
  auto first = StartLinecount("first", 8);
  auto second = StartLinecount("second", 8);
  ASSERT_TRUE(first && second);
  StartProxyWithEndpoints({{first->address(), 8}, {second->address(), 8}},
                          {"--pipeline_depth=4", "--threads=1"});
  for (int round = 0; round < 2; ++round) {  // the second on warm connections
    MapRun run = Map(LinesMap(absl::StrCat("file://", path), 2000));
    ASSERT_TRUE(run.status.ok()) << run.status.error_message();
    std::vector<eofaas::v1::MapItem> items = Items(run);
    EXPECT_EQ(static_cast<int64_t>(items.size()), (fs::file_size(path) + 1999) / 2000);
    EXPECT_EQ(run.events.back().done().failed(), 0);
    EXPECT_EQ(SumOfLines(items), CountLines(path));
  }
}

// Without --tls_ca_file the same Map is refused before anything is planned: the certificate does
// not check out against the system's authorities, and asking again would not change that. A
// --tls_ca_file that cannot be read stops the proxy at start.
TEST_F(ProxyTest, MapOverAnUntrustedHttpsObjectIsRefused) {
  auto refused = ProxyProcess::Start({"--endpoints=" + dir_.Write("none.yaml", "functions: {}\n"),
                                      "--tls_ca_file=" + dir_ / "missing.pem"},
                                     dir_ / "refused.log");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "tls_ca_file: cannot read "))
      << refused.status();

  auto nginx = ServeText("tls.txt", 10'000);
  ASSERT_TRUE(nginx);
  auto replica = StartLinecount("replica");
  ASSERT_TRUE(replica);
  StartProxyWithEndpoints({{replica->address(), 4}});
  MapRun run = Map(LinesMap(nginx->HttpsUrl("tls.txt"), 1000));
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << run.status.error_message();
  EXPECT_TRUE(absl::StrContains(run.status.error_message(), "inputs[0]: HEAD https://"))
      << run.status.error_message();
  EXPECT_TRUE(absl::StrContains(run.status.error_message(), "certificate"))
      << run.status.error_message();
  EXPECT_TRUE(run.events.empty());
  EXPECT_EQ(nginx->AccessLog(), "");  // the handshake failed: no request reached nginx
}

// A replica dies (SIGKILL to its process group) while it runs cursors of a Map: those are retried
// on the other replica and every item comes back exactly once, all of them successful.
TEST_F(HeldReplicasProxyTest, ReplicaKilledInTheMiddleOfAMapLosesNoItem) {
  const std::string path = data_root_ + "/kill.txt";
  WriteText(path, 300'000);
  const int64_t lines = CountLines(path);
  constexpr int kHoldFrom = 24;
  constexpr int kWindow = 8;  // both replicas' slots
  auto context = Context(absl::Seconds(60));
  MapRun run;
  // `planned`, then the items before kHoldFrom. Cursors go out in index order, so the next
  // kWindow ones are now held, four on each replica.
  auto reader = StartHeldMap(*context, path, kHoldFrom, kWindow, run);
  std::set<std::string> replicas;
  for (const auto& first : run.items) replicas.insert(first.replica());
  const bool both_busy = run.items.size() == kHoldFrom && replicas.size() == 2;
  EXPECT_TRUE(both_busy) << run.items.size() << " items from " << replicas.size() << " replicas";
  const std::string victim = both_busy ? run.items[0].replica() : "";
  if (both_busy) {
    EXPECT_TRUE(KillReplicaGroup(plane_->instance(), victim)) << victim;
  }
  Release(*reader, run);
  if (!both_busy) return;

  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_FALSE(items.empty());
  const int64_t planned = run.events.front().planned().items();
  EXPECT_EQ(planned, static_cast<int64_t>((fs::file_size(path) + 999) / 1000));
  int64_t sum_lines = 0;
  int held_and_retried = 0;
  for (const auto& item : items) {
    ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
    sum_lines += static_cast<int64_t>(Number(item.result(), "lines"));
    if (item.index() >= kHoldFrom && item.index() < kHoldFrom + kWindow) {
      held_and_retried += item.attempts() > 1;
    }
  }
  EXPECT_EQ(sum_lines, lines);
  const auto& done = run.events.back().done();
  EXPECT_EQ(done.succeeded(), planned);
  EXPECT_EQ(done.failed(), 0);
  // Of the held cursors, exactly the victim's four were retried; later cursors may have been sent
  // to it too before the proxy learnt it was gone.
  EXPECT_EQ(held_and_retried, kWindow / 2);
  EXPECT_GE(done.retried(), kWindow / 2);

  // The control plane replaces the killed replica.
  auto healed = plane_->WaitFor("linecount", [](const eofaas::v1::Function& f) {
    return f.status().restarts() >= 1 && f.status().ready_replicas() == 2;
  });
  EXPECT_TRUE(healed.ok()) << healed.status();
}

// A file rewritten while a Map runs: the chunks read before keep their results, and every later
// one fails with the reader's ObjectChangedError (the cursor's etag names the planned version),
// rather than counting lines of the new version.
TEST_F(HeldReplicasProxyTest, FileRewrittenDuringAMapFailsTheLaterItems) {
  const std::string path = data_root_ + "/rewritten.txt";
  WriteText(path, 30'000);
  constexpr int kHoldFrom = 8;
  auto context = Context(absl::Seconds(60));
  MapRun run;
  auto reader = StartHeldMap(*context, path, kHoldFrom, /*window=*/8, run);
  ASSERT_EQ(run.items.size(), kHoldFrom);
  WriteText(path, 31'000);
  Release(*reader, run);

  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_GT(items.size(), kHoldFrom);
  for (const auto& item : items) {
    if (item.index() < kHoldFrom) {
      EXPECT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
    } else {
      ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kError) << item.ShortDebugString();
      EXPECT_EQ(item.error().type(), "ObjectChangedError");
      EXPECT_EQ(item.attempts(), 1);  // a function error is not retried
    }
  }
  const auto& done = run.events.back().done();
  EXPECT_EQ(done.succeeded(), kHoldFrom);
  EXPECT_EQ(done.failed(), static_cast<int64_t>(items.size()) - kHoldFrom);
}

// A replica that answers 500 (without the function-error header) costs its items one attempt:
// each is retried on the good replica, and the Map sees only successes.
TEST_F(FaultyEndpointsProxyTest, MapRetriesItemsAReplicaAnswers500ToOnAnotherReplica) {
  auto good = StartLinecount("good");
  auto broken = StartFault("broken", {"FAULT_STATUS=500"});
  ASSERT_TRUE(good && broken);
  StartProxyWithEndpoints({{good->address(), 4}, {broken->address(), 4}});
  const std::string path = data_root_ + "/retry.txt";
  WriteText(path, 60'000);
  MapRequest request = LinesMap("file://" + path, 2000);
  request.set_max_in_flight(8);
  MapRun run = Map(request);
  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_FALSE(items.empty());
  int64_t sum_lines = 0;
  std::set<int64_t> retried;
  for (const auto& item : items) {
    ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
    EXPECT_EQ(item.replica(), good->address());
    EXPECT_LE(item.attempts(), 2);
    if (item.attempts() == 2) retried.insert(item.index());
    sum_lines += static_cast<int64_t>(Number(item.result(), "lines"));
  }
  EXPECT_EQ(sum_lines, CountLines(path));
  EXPECT_EQ(run.events.back().done().retried(), static_cast<int64_t>(retried.size()));

  // The items retried are exactly those the broken replica was sent, each on its first attempt.
  auto stats = HttpRequest(broken->address(), "GET", "/stats");
  ASSERT_TRUE(stats.ok()) << stats.status();
  std::set<int64_t> hit;
  const google::protobuf::Struct broken_stats = Json(stats->body);
  for (const auto& body : broken_stats.fields().at("bodies").list_value().values()) {
    auto fields = Json(body.string_value()).fields();
    EXPECT_EQ(fields.at("attempt").number_value(), 1);
    const std::string& id = fields.at("id").string_value();
    int64_t index = -1;
    EXPECT_TRUE(absl::SimpleAtoi(id.substr(id.rfind('-') + 1), &index)) << id;
    hit.insert(index);
  }
  EXPECT_FALSE(hit.empty());  // with two free replicas, the second cursor goes to the idle one
  EXPECT_EQ(hit, retried);

  auto metrics = HttpRequest(proxy_->metrics_address(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body, absl::StrCat(R"(eofaas_proxy_retries_total{reason="5xx"} )", hit.size())))
      << metrics->body;
}

// Two Maps, each with more items in flight than the function's queue holds beside its one
// replica slot: their items wait for the replica instead of failing with RESOURCE_EXHAUSTED (a
// Map bounds its own items by its window).
TEST_F(FaultyEndpointsProxyTest, ConcurrentMapsBeyondTheQueueWaitForTheReplica) {
  auto replica = StartLinecount("replica", 1);
  ASSERT_TRUE(replica);
  StartProxyWithEndpoints({{replica->address(), 1}}, {"--queue_limit=2"});
  const std::string path = data_root_ + "/queued.txt";
  WriteText(path, 40'000);
  MapRequest request = LinesMap("file://" + path, 2000);
  request.set_max_in_flight(8);
  MapRun other;
  std::thread concurrent([&] { other = Map(request); });
  MapRun run = Map(request);
  concurrent.join();
  for (const MapRun* map : {&run, &other}) {
    std::vector<eofaas::v1::MapItem> items = Items(*map);
    ASSERT_GT(items.size(), 10u);
    EXPECT_EQ(SumOfLines(items), CountLines(path));
    EXPECT_EQ(map->events.back().done().failed(), 0);
  }
}

// A replica slower than the Map's item_timeout: the items it took fail with DEADLINE_EXCEEDED
// once the timeout passes (not retried: the item's budget is spent), every other item succeeds.
TEST_F(FaultyEndpointsProxyTest, SlowReplicaFailsOnlyItsOwnItemsWithDeadlineExceeded) {
  auto fast = StartLinecount("fast");
  auto slow = StartFault("slow", {"FAULT_DELAY_MS=20000"});
  ASSERT_TRUE(fast && slow);
  StartProxyWithEndpoints({{fast->address(), 4}, {slow->address(), 1}});
  const std::string path = data_root_ + "/slow.txt";
  WriteText(path, 60'000);
  const std::string text = ReadFile(path);
  MapRequest request = LinesMap("file://" + path, 2000);
  request.set_max_in_flight(5);
  request.mutable_item_timeout()->set_seconds(2);
  const absl::Time start = absl::Now();
  MapRun run = Map(request);
  const absl::Duration elapsed = absl::Now() - start;
  std::vector<eofaas::v1::MapItem> items = Items(run);
  ASSERT_FALSE(items.empty());
  int64_t failed = 0;
  for (const auto& item : items) {
    EXPECT_EQ(item.attempts(), 1) << item.ShortDebugString();
    if (item.replica() == slow->address()) {
      ++failed;
      ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kFailure) << item.ShortDebugString();
      EXPECT_EQ(item.failure().code(), "DEADLINE_EXCEEDED") << item.ShortDebugString();
    } else {
      EXPECT_EQ(item.replica(), fast->address());
      ASSERT_EQ(item.outcome_case(), eofaas::v1::MapItem::kResult) << item.ShortDebugString();
      EXPECT_EQ(Number(item.result(), "lines"),
                OwnedLines(text, item.cursor().offset(), item.cursor().length()));
    }
  }
  // With two free replicas, the second cursor goes to the idle one.
  EXPECT_GE(failed, 1);
  const auto& done = run.events.back().done();
  EXPECT_EQ(done.failed(), failed);
  EXPECT_EQ(done.succeeded(), static_cast<int64_t>(items.size()) - failed);
  // The timeout, not the replica's 20 s, bounds the Map.
  EXPECT_GE(elapsed, absl::Seconds(2));
  EXPECT_LT(elapsed, absl::Seconds(12));

  // The slow replica got exactly the failed items, and was told the budget each had.
  auto stats = HttpRequest(slow->address(), "GET", "/stats");
  ASSERT_TRUE(stats.ok()) << stats.status();
  auto fields = Json(stats->body).fields();
  EXPECT_EQ(fields.at("requests").number_value(), failed);
  for (const auto& body : fields.at("bodies").list_value().values()) {
    const double deadline_ms = Number(body.string_value(), "deadline_ms");
    EXPECT_GT(deadline_ms, 0);
    EXPECT_LE(deadline_ms, 2000);
  }
}

}  // namespace
}  // namespace eofaas::tests
