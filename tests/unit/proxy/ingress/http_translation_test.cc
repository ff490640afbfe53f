// The HTTP ingress's wire format: routes, bodies, and statuses and outcomes as answers.
#include "proxy/ingress/http_translation.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

TEST(InvokeRouteTest, NamesTheFunctionOfTheInvokePathOnly) {
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount:invoke"), "linecount");
  EXPECT_EQ(InvokeRoute("/v1/functions/Odd_Name:invoke"), "Odd_Name");  // judged later
  EXPECT_EQ(InvokeRoute("/v1/functions/:invoke"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/a/b:invoke"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount:invoke?x=1"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/"), std::nullopt);
  // The absolute form names the same path (RFC 9112 section 3.2.2).
  EXPECT_EQ(InvokeRoute("http://proxy:8080/v1/functions/linecount:invoke"), "linecount");
  EXPECT_EQ(InvokeRoute("HTTPS://proxy/v1/functions/linecount:invoke"), "linecount");
  EXPECT_EQ(InvokeRoute("http://proxy"), std::nullopt);
  EXPECT_EQ(InvokeRoute("ftp://proxy/v1/functions/linecount:invoke"), std::nullopt);
}

TEST(RejectRequestLineTest, AnswersAnythingButAJsonPostToTheRoute) {
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", ""), std::nullopt);
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "application/json; charset=utf-8"),
            std::nullopt);
  EXPECT_EQ(RejectRequestLine("POST", "/metrics", "")->status, 404);
  std::optional<HttpAnswer> get = RejectRequestLine("GET", "/v1/functions/f:invoke", "");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->headers, (decltype(get->headers){{"Allow", "POST"}}));
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "Application/JSON"), std::nullopt);
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "text/csv")->status, 415);
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "application/jsonl")->status, 415);
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "application/json-seq")->status,
            415);
}

TEST(ParseInvokeBodyTest, ReadsCursorArgsAndTimeout) {
  InvokeBody body;
  ASSERT_TRUE(ParseInvokeBody("f", R"({"cursor": {"uri": "file:///d/x", "offset": "10",
      "length": 5, "framing": "FRAMING_LINES"}, "args": {"k": [1, "two"]}, "timeout": "1.5s"})",
                              body)
                  .ok());
  const eofaas::v1::InvokeRequest& request = body.request;
  EXPECT_EQ(request.function(), "f");
  EXPECT_EQ(request.cursor().uri(), "file:///d/x");
  EXPECT_EQ(request.cursor().offset(), 10);
  EXPECT_EQ(request.cursor().length(), 5);
  EXPECT_EQ(request.cursor().framing(), eofaas::v1::FRAMING_LINES);
  EXPECT_FALSE(request.has_args());
  EXPECT_EQ(body.args_json, R"({"k": [1, "two"]})");  // as written
  EXPECT_EQ(request.timeout().seconds(), 1);
  EXPECT_EQ(request.timeout().nanos(), 500'000'000);

  // Reused for the next request: nothing of the previous one is left.
  ASSERT_TRUE(ParseInvokeBody("g", R"({"cursor": {"uri": "s3://b/k"}})", body).ok());
  EXPECT_EQ(body.request.function(), "g");
  EXPECT_EQ(body.request.cursor().offset(), 0);
  EXPECT_FALSE(body.request.cursor().has_length());
  EXPECT_FALSE(body.request.has_timeout());
  EXPECT_EQ(body.args_json, "{}");
}

TEST(ParseInvokeBodyTest, RejectsWhatIsNotSuchAnObject) {
  for (const char* text :
       {"", "[]", "{", R"({"cursor": 3})", R"({"unknown": 1})", R"({"function": "g"})",
        R"({"cursor": {"uri": "file:///x"}, "extra": 1})", R"({"cursor": {"offset": "x"}})",
        R"({"cursor": {"framing": "SIDEWAYS"}})", R"({"args": {"a": 1}, "args": {"b": 2})",
        R"({"args": [1]})", R"({"args": {"a": tru}})", R"({"timeout": 5})", R"({"timeout": "5"})",
        R"({} {})", R"({"args": {"a": 1})"}) {
    SCOPED_TRACE(text);
    InvokeBody body;
    absl::Status status = ParseInvokeBody("f", text, body);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(status.message(), "body:")) << status;
  }
}

// What protobuf's JSON parser makes of `text` as an InvokeRequest, args apart: the request
// without them, and them.
struct ProtobufReading {
  bool ok = false;
  eofaas::v1::InvokeRequest request;
  google::protobuf::Struct args;
};

ProtobufReading ReadWithProtobuf(const std::string& text) {
  ProtobufReading reading;
  reading.ok = google::protobuf::util::JsonStringToMessage(text, &reading.request).ok() &&
               reading.request.function().empty();
  reading.args = reading.request.args();
  reading.request.clear_args();
  reading.request.set_function("f");
  return reading;
}

// The bodies clients send, and their variations: the fast reading must take them, and read them
// as protobuf does.
TEST(ParseCommonInvokeBodyTest, ReadsCommonBodiesAsProtobufDoes) {
  const std::vector<std::string> bodies = {
      R"({"cursor": {"uri": "file:///data/input.bin", "offset": 0, "length": 100}, "args": {}})",
      R"({"cursor":{"uri":"file:///d/x","offset":"10","length":"5","framing":"FRAMING_LINES",)"
      R"("part":"2","parts":"7","size":"123456789012","etag":"\"ab\""}})",
      R"({"cursor": {"uri": "s3://bucket/key", "framing": "FRAMING_NONE", "etag": "abc"}})",
      R"({"cursor": {"uri": "https://h/x?a=1&b=%20", "offset": -1, "length": -5}})",
      R"({"cursor": {"uri": "file:///x", "offset": 9223372036854775807,)"
      R"( "size": "-9223372036854775808"}})",
      R"({"cursor": {"uri": "file:///x", "framing": "FRAMING_UNSPECIFIED", "length": 0}})",
      R"({"cursor": {}})",
      R"({})",
      " \r\n\t{ \"args\" : { } , \"cursor\" : { \"uri\" : \"file:///x\" } } \n",
      R"({"timeout": "0s"})",
      R"({"timeout": "1s"})",
      R"({"timeout": "1.5s"})",
      R"({"timeout": "0.000000001s"})",
      R"({"timeout": "0.123456789s"})",
      R"({"timeout": "2.999999999s"})",
      R"({"timeout": "0.3s"})",
      R"({"timeout": "0.07s"})",
      R"({"timeout": "315576000000s"})",
      R"({"timeout": "315576000000.999999999s"})",
      R"({"args": {"a": 1, "b": -2.5, "c": "text", "d": true, "e": false, "f": null}})",
      R"({"args": {"nested": {"list": [1, [2, [3, {"x": []}]], {}], "s": "q\"\\\/\b\f\n\r\t"}}})",
      R"({"args": {"unicode": "\u00e9\u4e2d\uFFFF\u0000", "empty": "", "": 0}})",
      R"({"args": {"big": 123456789012345, "small": 0.00000000000001, "zero": -0.0}})",
      R"({"args": {"a": 1}, "cursor": {"uri": "file:///x"}, "timeout": "10s"})",
  };
  InvokeBody reused;  // read every body in turn, as a connection's is
  for (const std::string& text : bodies) {
    SCOPED_TRACE(text);
    InvokeBody body;
    ASSERT_TRUE(ParseCommonInvokeBody(text, body)) << "not read by the fast path";
    ASSERT_TRUE(ParseCommonInvokeBody(text, reused));
    reused.request.set_function("f");
    body.request.set_function("f");
    ProtobufReading expected = ReadWithProtobuf(text);
    ASSERT_TRUE(expected.ok);
    std::string difference;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&difference);
    EXPECT_TRUE(differencer.Compare(body.request, expected.request)) << difference;
    google::protobuf::Struct args;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body.args_json, &args).ok())
        << body.args_json;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(args, expected.args))
        << body.args_json;
    // ParseInvokeBody gives the same.
    InvokeBody full;
    ASSERT_TRUE(ParseInvokeBody("f", text, full).ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(full.request, body.request));
    EXPECT_EQ(full.args_json, body.args_json);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(reused.request, body.request));
    EXPECT_EQ(reused.request.has_cursor(), body.request.has_cursor());
    EXPECT_EQ(reused.args_json, body.args_json);
  }
}

// Anything else goes to protobuf's parser, which decides: valid bodies in forms the fast path
// does not read, and invalid ones. ParseInvokeBody then means what protobuf means.
TEST(ParseCommonInvokeBodyTest, LeavesAnythingElseToProtobuf) {
  const std::vector<std::string> bodies = {
      // valid for protobuf
      R"({"cursor": {"uri": "file:///caf\u00e9"}})",
      R"({"cursor": {"uri": "file:///café"}})",
      R"({"cursor": {"uri": "file:///x", "offset": 1.0}})",
      R"({"cursor": {"uri": "file:///x", "offset": 1e2}})",
      R"({"cursor": {"uri": "file:///x", "offset": "-0"}})",
      R"({"cursor": {"uri": "file:///x", "offset": "007"}})",
      R"({"cursor": {"uri": "file:///x", "framing": 2}})",
      R"({"cursor": {"uri": "file:///x", "length": null}})",
      R"({"cursor": null})",
      R"({"args": null})",
      R"({"timeout": "-1s"})",
      R"({"timeout": "1.s"})",
      R"({"timeout": "1.0000000001s"})",
      R"({"args": {"e": 1e3, "huge": 12345678901234567890, "u": "é"}})",
      R"({"args": {"pair": "\ud83d\ude00"}})",
      R"({"args": {"dup": 1, "dup": 2}})",
      R"({"\u0063ursor": {"uri": "file:///x"}})",
      // invalid
      R"({"function": "g"})",
      R"({"cursor": {"uri": "file:///x", "offset": "9223372036854775808"}})",
      R"({"cursor": {"uri": "file:///x", "uri": "file:///y"}})",
      R"({"cursor": {"uri": "a\u0001b"}})",
      R"({"timeout": "315576000001s"})",
      R"({"args": {"stray": "\udc00"}})",
      R"({"args": {"a": 01}})",
      R"({"args": {"a": 1.}})",
      R"({"args": {"a": "tab	inside"}})",
      "{\"args\": {\"a\": \"\xff\"}}",
      R"({"args": {"a": 1},})",
      R"({"args": 1})",
      R"({"cursor": {"uri": "file:///x"}} trailing)",
  };
  for (const std::string& text : bodies) {
    SCOPED_TRACE(text);
    InvokeBody body;
    EXPECT_FALSE(ParseCommonInvokeBody(text, body));
    ProtobufReading expected = ReadWithProtobuf(text);
    absl::Status status = ParseInvokeBody("f", text, body);
    EXPECT_EQ(status.ok(), expected.ok) << status;
    if (!status.ok()) {
      EXPECT_TRUE(absl::StartsWith(status.message(), "body:")) << status;
      continue;
    }
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(body.request, expected.request));
    google::protobuf::Struct args;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body.args_json, &args).ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(args, expected.args));
  }
}

// `depth` arrays in args' field "a".
std::string NestedArgs(int depth) {
  return absl::StrCat(R"({"args": {"a": )", std::string(depth, '['), std::string(depth, ']'), "}}");
}

TEST(ParseCommonInvokeBodyTest, ArgsNestOnlySoDeepOnTheFastPath) {
  InvokeBody body;
  EXPECT_TRUE(ParseCommonInvokeBody(NestedArgs(20), body));
  EXPECT_FALSE(ParseCommonInvokeBody(NestedArgs(28), body));
  EXPECT_TRUE(ParseInvokeBody("f", NestedArgs(28), body).ok());  // protobuf reads and prints it
  absl::Status too_deep = ParseInvokeBody("f", NestedArgs(40), body);
  EXPECT_EQ(too_deep.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(too_deep.message(), "args:")) << too_deep;
}

TEST(HttpStatusOfTest, MapsEveryCodeTheIngressReturns) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 500);
}

TEST(InvokeAnswerTest, ResultsFunctionErrorsAndFailures) {
  InvokeOutcome outcome;
  outcome.result = std::string("\x00\xff bytes", 8);
  outcome.replica = "127.0.0.1:9001";
  outcome.attempts = 2;
  HttpAnswer result = InvokeAnswer(outcome);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, std::string("\x00\xff bytes", 8));
  EXPECT_EQ(result.content_type, "application/octet-stream");
  EXPECT_EQ(result.headers, (decltype(result.headers){{"X-Eofaas-Replica", "127.0.0.1:9001"},
                                                      {"X-Eofaas-Attempts", "2"}}));

  outcome.error = FunctionError{.type = "ValueError", .message = "bad \"input\"\n"};
  HttpAnswer error = InvokeAnswer(outcome);
  EXPECT_EQ(error.status, 200);
  EXPECT_EQ(error.body, R"({"error":{"type":"ValueError","message":"bad \"input\"\n"}})");
  EXPECT_EQ(error.headers.back(),
            (std::pair<std::string_view, std::string>{"X-Eofaas-Function-Error", "unhandled"}));

  outcome.status = absl::DeadlineExceededError("no answer within 300ms");
  HttpAnswer failure = InvokeAnswer(outcome);
  EXPECT_EQ(failure.status, 504);
  EXPECT_EQ(failure.content_type, "application/json");
  EXPECT_EQ(failure.body,
            R"({"error":{"code":"DEADLINE_EXCEEDED","message":"no answer within 300ms"}})");
}

TEST(AppendResponseHeadTest, WritesTheStatusLineAndFields) {
  HttpAnswer answer = {.status = 200, .content_type = "application/octet-stream", .body = "ok"};
  answer.headers.emplace_back("X-Eofaas-Attempts", "1");
  std::string head = "kept:";
  AppendResponseHead(answer, 11, true, head);
  EXPECT_EQ(head,
            "kept:HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            "X-Eofaas-Attempts: 1\r\nContent-Length: 2\r\n\r\n");

  head.clear();
  AppendResponseHead(ErrorAnswer(absl::CancelledError("gone")), 10, true, head);
  EXPECT_TRUE(absl::StartsWith(head, "HTTP/1.0 499 Client Closed Request\r\n")) << head;
  EXPECT_TRUE(absl::StrContains(head, "\r\nConnection: keep-alive\r\n")) << head;

  head.clear();
  AppendResponseHead(HttpAnswer{.status = 413}, 11, false, head);
  EXPECT_EQ(head,
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace eofaas::proxy
