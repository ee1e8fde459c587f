// The evaluation report: ROC curve points, metrics over scanned clips only,
// no-face clips scored 0, ranking, JSON/table/HTML content.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "report/eval_report.h"

using namespace dfd;

namespace {
EvalClip clip(const std::string& id, bool fake, const std::string& verdict, float score) {
  EvalClip c;
  c.id = id;
  c.path = "/data/" + id;
  c.fake = fake;
  c.verdict = verdict;
  c.score = score;
  return c;
}

EvalResult sample() {
  EvalResult r;
  r.dataset = "dev";
  r.model = "m.h5";
  r.threshold = 0.5f;
  r.clips = {clip("fake/a.mp4", true, "FAKE", 0.9f), clip("fake/b.mp4", true, "REAL", 0.3f),
             clip("real/c.mp4", false, "REAL", 0.2f), clip("real/d.mp4", false, "FAKE", 0.6f),
             clip("real/e.mp4", false, "NO_FACE", 0.f)};
  EvalClip bad = clip("fake/broken.mp4", true, "", 0.f);
  bad.failed = true;
  bad.error = "decode error";
  r.clips.push_back(bad);
  return r;
}
}  // namespace

TEST(RocCurve, RunsFromOriginToOneOnePointPerDistinctScore) {
  // fakes 0.9, 0.3; reals 0.6, 0.2, 0.0
  const auto roc = roc_curve({0.9f, 0.3f, 0.2f, 0.6f, 0.f}, {true, true, false, false, false});
  ASSERT_EQ(roc.size(), 6u);
  EXPECT_DOUBLE_EQ(roc.front().fpr, 0);
  EXPECT_DOUBLE_EQ(roc.front().tpr, 0);
  EXPECT_DOUBLE_EQ(roc[1].tpr, 0.5);  // >= 0.9: one fake
  EXPECT_DOUBLE_EQ(roc[1].fpr, 0);
  EXPECT_NEAR(roc[2].fpr, 1.0 / 3, 1e-12);  // >= 0.6: one real too
  EXPECT_DOUBLE_EQ(roc[3].tpr, 1);          // >= 0.3: both fakes
  EXPECT_DOUBLE_EQ(roc.back().fpr, 1);
  EXPECT_DOUBLE_EQ(roc.back().tpr, 1);
  for (size_t i = 1; i < roc.size(); ++i) EXPECT_GE(roc[i].fpr, roc[i - 1].fpr);
}

TEST(EvalResult, MetricsLeaveFailedClipsOutAndScoreNoFaceAsZero) {
  const auto r = sample();
  const auto m = r.summary();
  EXPECT_EQ(m.n, 5);
  EXPECT_EQ(m.n_fake, 2);
  EXPECT_EQ(r.failed(), 1);
  EXPECT_EQ(r.no_face(), 1);
  // AUC: fake scores {0.9, 0.3} vs real {0.6, 0.2, 0}: pairs won 3 + 2 = 5 of 6.
  EXPECT_NEAR(m.auc, 5.0 / 6, 1e-9);
  EXPECT_EQ(m.cm.fake_as_fake, 1);
  EXPECT_EQ(m.cm.fake_as_real, 1);
  EXPECT_EQ(m.cm.real_as_fake, 1);
  EXPECT_EQ(m.cm.real_as_real, 2);
  EXPECT_NEAR(m.accuracy, 3.0 / 5, 1e-9);
}

TEST(EvalResult, JsonRanksClipsAndMarksCorrectness) {
  const auto j = nlohmann::json::parse(sample().to_json());
  ASSERT_EQ(j["clips"].size(), 6u);
  EXPECT_EQ(j["clips"][0]["id"], "fake/a.mp4");
  EXPECT_EQ(j["clips"][0]["correct"], true);
  EXPECT_EQ(j["clips"][1]["id"], "real/d.mp4");
  EXPECT_EQ(j["clips"][1]["correct"], false);
  EXPECT_EQ(j["clips"][5]["id"], "fake/broken.mp4");
  EXPECT_EQ(j["clips"][5]["error"], "decode error");
  EXPECT_NEAR(j["metrics"]["roc_auc"].get<double>(), 5.0 / 6, 1e-6);
  EXPECT_EQ(j["metrics"]["confusion"]["real_as_fake"], 1);
  EXPECT_EQ(j["metrics"]["failed"], 1);
  EXPECT_EQ(j["roc"].size(), 6u);
}

TEST(EvalResult, TableAndHtmlShowTheFigures) {
  const auto r = sample();
  const std::string t = r.table();
  EXPECT_NE(t.find("ROC AUC 0.833"), std::string::npos) << t;
  EXPECT_NE(t.find("1 failed (left out)"), std::string::npos) << t;
  EXPECT_NE(t.find("   1  FAKE   FAKE        0.900  fake/a.mp4"), std::string::npos) << t;
  const std::string h = r.html();
  EXPECT_NE(h.find("<svg"), std::string::npos);
  EXPECT_NE(h.find("AUC 0.833"), std::string::npos);
  EXPECT_NE(h.find("class='wrong'"), std::string::npos);
  EXPECT_EQ(h.find("<script"), std::string::npos);
}

TEST(EvalResult, HtmlEscapesClipNames) {
  EvalResult r;
  r.clips = {clip("real/<b>x</b>.mp4", false, "REAL", 0.1f)};
  EXPECT_EQ(r.html().find("<b>x</b>"), std::string::npos);
  EXPECT_NE(r.html().find("&lt;b&gt;"), std::string::npos);
}
