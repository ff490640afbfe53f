// The informer against a fake API server: it lists, watches from the list's version, watches on
// from the last version (bookmarks included) when a watch ends, and lists again on 410.
#include "control/k8s/client/informer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/unit/control/k8s/client/api_server_test.h"

namespace eofaas::control::k8s {
namespace {

class InformerTest : public ApiServerTest {
 protected:
  /// Records a list as "LIST a,b" and each event as "ADDED c".
  static Informer::Handlers Recording(EventLog& log) {
    return {.on_list =
                [&log](const ObjectList& list) {
                  std::vector<std::string> names;
                  for (const auto& item : list.items) names.push_back(Meta(item, "name"));
                  log.Add("LIST " + absl::StrJoin(names, ","));
                },
            .on_event = [&log](const WatchEvent& event) { log.Add(Describe(event)); }};
  }
  static InformerOptions Fast() {
    return {.initial_backoff = absl::Milliseconds(10), .max_backoff = absl::Milliseconds(100)};
  }
  using Log = std::vector<std::string>;
};

TEST_F(InformerTest, ListsThenReportsEachChange) {
  StartServer();
  auto client = Client(Config());
  ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());
  EventLog log;
  Informer informer(*client, kConfigMaps, Recording(log), Fast());
  informer.Start();
  EXPECT_EQ(log.WaitFor(1), Log{"LIST a"});
  ASSERT_TRUE(client->Apply(ConfigMap("b")).ok());
  ASSERT_TRUE(client->Apply(ConfigMap("a", "c")).ok());
  EXPECT_EQ(log.WaitFor(3), (Log{"LIST a", "ADDED b", "MODIFIED a"}));
  informer.Stop();
}

TEST_F(InformerTest, FollowsItsSelector) {
  StartServer();
  auto client = Client(Config());
  ASSERT_TRUE(client->Apply(ConfigMap("a", "x")).ok());
  ASSERT_TRUE(client->Apply(ConfigMap("b", "y")).ok());
  EventLog log;
  InformerOptions options = Fast();
  options.selector.labels = "tier=y";
  Informer informer(*client, kConfigMaps, Recording(log), options);
  informer.Start();
  EXPECT_EQ(log.WaitFor(1), Log{"LIST b"});
  ASSERT_TRUE(client->Apply(ConfigMap("c", "x")).ok());
  ASSERT_TRUE(client->Apply(ConfigMap("d", "y")).ok());
  EXPECT_EQ(log.WaitFor(2), (Log{"LIST b", "ADDED d"}));
}

TEST_F(InformerTest, WatchesOnFromTheLastVersionWhenTheServerEndsTheWatch) {
  StartServer();
  auto client = Client(Config());
  EventLog log;
  Informer informer(*client, kConfigMaps, Recording(log), Fast());
  informer.Start();
  EXPECT_EQ(log.WaitFor(1), Log{"LIST "});
  absl::StatusOr<boost::json::object> a = client->Apply(ConfigMap("a"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(log.WaitFor(2), (Log{"LIST ", "ADDED a"}));

  server_->EndWatches();
  EXPECT_TRUE(server_->WaitForRequest("resourceVersion=" + Meta(*a, "resourceVersion") + "&"));
  ASSERT_TRUE(client->Apply(ConfigMap("b")).ok());
  EXPECT_EQ(log.WaitFor(3), (Log{"LIST ", "ADDED a", "ADDED b"}));
  EXPECT_EQ(server_->ListCount(kConfigMaps), 1);
}

TEST_F(InformerTest, ABookmarkMovesTheVersionOn) {
  StartServer();
  auto client = Client(Config());
  EventLog log;
  Informer informer(*client, kConfigMaps, Recording(log), Fast());
  informer.Start();
  EXPECT_EQ(log.WaitFor(1), Log{"LIST "});
  ASSERT_TRUE(server_->WaitForWatches(1));

  // Changes elsewhere move the server's version past anything this watch has seen.
  YAML::Node elsewhere = ConfigMap("x");
  elsewhere["metadata"]["namespace"] = String("other");
  ASSERT_TRUE(client->Apply(elsewhere).ok());
  const std::string bookmark = std::to_string(server_->revision());
  server_->SendBookmarks();

  // The watch breaks and history is compacted to the bookmark's version: the informer goes on
  // from there without listing again.
  server_->PauseWatches();
  ASSERT_TRUE(server_->WaitForRequest("resourceVersion=" + bookmark + "&"));
  server_->Compact();
  server_->ResumeWatches();
  ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());
  EXPECT_EQ(log.WaitFor(2), (Log{"LIST ", "ADDED a"}));
  EXPECT_EQ(server_->ListCount(kConfigMaps), 1);
}

TEST_F(InformerTest, AnExpiredVersionListsAgainAndReportsTheFreshList) {
  for (const bool as_http_status : {false, true}) {
    SCOPED_TRACE(as_http_status ? "HTTP 410" : "ERROR event");
    StartServer({.expired_watch_as_http_status = as_http_status});
    auto client = Client(Config());
    ASSERT_TRUE(client->Apply(ConfigMap("a")).ok());
    ASSERT_TRUE(client->Apply(ConfigMap("b")).ok());
    EventLog log;
    Informer informer(*client, kConfigMaps, Recording(log), Fast());
    informer.Start();
    EXPECT_EQ(log.WaitFor(1), Log{"LIST a,b"});
    ASSERT_TRUE(server_->WaitForWatches(1));

    // While the watch is down, a changes, c comes, and the history of it all is compacted.
    server_->PauseWatches();
    ASSERT_TRUE(client->Delete(std::string(kConfigMaps) + "/a").ok());
    ASSERT_TRUE(client->Apply(ConfigMap("c")).ok());
    server_->Compact();
    server_->ResumeWatches();
    EXPECT_EQ(log.WaitFor(2), (Log{"LIST a,b", "LIST b,c"}));
    EXPECT_EQ(server_->ListCount(kConfigMaps), 2);

    ASSERT_TRUE(client->Apply(ConfigMap("d")).ok());
    EXPECT_EQ(log.WaitFor(3), (Log{"LIST a,b", "LIST b,c", "ADDED d"}));
    informer.Stop();
  }
}

TEST_F(InformerTest, RetriesUntilTheServerLetsItIn) {
  StartServer({.tokens = {"someone-else"}});
  auto client = Client(Config());
  EventLog log;
  Informer informer(*client, kConfigMaps, Recording(log), Fast());
  informer.Start();
  ASSERT_TRUE(server_->WaitForRequest(kConfigMaps));
  server_->SetTokens({kToken});
  EXPECT_EQ(log.WaitFor(1), Log{"LIST "});
}

}  // namespace
}  // namespace eofaas::control::k8s
