// deepfake-scan's many-file parts without a pipeline: expanding inputs
// (files, directories, globs, URIs) on a real temporary tree, report names,
// atomic writes, the summary (CSV, JSON Lines, table), the exit status and
// the progress lines.
#include <gtest/gtest.h>
#include <glib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "scan_batch/batch_inputs.h"
#include "scan_batch/batch_progress.h"
#include "scan_batch/batch_run.h"
#include "scan_batch/batch_summary.h"

namespace fs = std::filesystem;
using dfd::BatchInput;
using dfd::BatchRow;

namespace {

class TempTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfd-scan-batch-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = fs::canonical(tmpl).string();
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string touch(const std::string& rel, const std::string& text = "x") {
    const fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::string root_;
};

std::vector<std::string> sources(const std::vector<BatchInput>& v) {
  std::vector<std::string> out;
  for (const auto& i : v) out.push_back(i.source);
  return out;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

BatchRow scanned(const std::string& input, const std::string& verdict, double p) {
  BatchRow r;
  r.input = input;
  r.status = BatchRow::Status::Scanned;
  r.verdict = verdict;
  r.fake_probability = p;
  r.threshold = 0.5;
  r.tracks = verdict == "NO_FACE" ? 0 : 1;
  r.frames = 24;
  r.elapsed_s = 1.25;
  r.report = "out/" + input + ".json";
  return r;
}

BatchRow failed(const std::string& input) {
  BatchRow r;
  r.input = input;
  r.status = BatchRow::Status::Failed;
  r.error_kind = "decode";
  r.error = input + ": truncated, \"corrupt\"";
  return r;
}

}  // namespace

TEST_F(TempTree, DirectoryIsWalkedRecursivelyForMediaExtensionsInPathOrder) {
  touch("a/clip.MP4");
  touch("a/notes.txt");
  touch("a/deeper/still.jpeg");
  touch("a/b.png");
  touch("a/no-extension");
  // Hidden files and folders (._clip.mp4 resource forks, .git) are not walked into.
  touch("a/._clip.MP4");
  touch("a/.cache/c.png");
  std::vector<std::string> notes;
  const auto in = dfd::expand_inputs({root_ + "/a"}, &notes);
  EXPECT_EQ(sources(in), (std::vector<std::string>{root_ + "/a/b.png", root_ + "/a/clip.MP4",
                                                   root_ + "/a/deeper/still.jpeg"}));
  for (const auto& i : in) EXPECT_TRUE(i.error.empty()) << i.error;
  EXPECT_TRUE(notes.empty());
}

TEST_F(TempTree, AFileNamedExplicitlyIsTakenWhateverItsName) {
  const std::string f = touch("notes.txt");
  const auto in = dfd::expand_inputs({f}, nullptr);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].path, f);
  EXPECT_TRUE(in[0].error.empty());
}

TEST_F(TempTree, EqualBaseNamesInDifferentFoldersGetDifferentReportNames) {
  const std::string a = touch("x/clip.avi"), b = touch("y/clip.avi");
  const auto in = dfd::expand_inputs({a, b}, nullptr);
  ASSERT_EQ(in.size(), 2u);
  EXPECT_NE(in[0].report_stem, in[1].report_stem);
  EXPECT_EQ(in[0].report_stem.rfind("clip.avi-", 0), 0u) << in[0].report_stem;
  EXPECT_EQ(in[0].report_stem.size(), std::string("clip.avi-").size() + 12);
  // The same path gives the same name in another run (what --resume looks up).
  EXPECT_EQ(dfd::report_stem_for(a), in[0].report_stem);
  EXPECT_NE(dfd::report_stem_for(a), dfd::report_stem_for(b));
}

TEST_F(TempTree, TheSameFileReachedTwiceIsListedOnce) {
  const std::string f = touch("d/one.png");
  fs::create_symlink(f, root_ + "/link.png");
  const auto in = dfd::expand_inputs({f, root_ + "/d", root_ + "/link.png", root_ + "/d/../d/one.png"}, nullptr);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].source, f);
}

TEST_F(TempTree, SymlinkedDirectoriesAreNotFollowedSoLoopsEnd) {
  touch("d/one.png");
  fs::create_directory_symlink(root_ + "/d", root_ + "/d/loop");
  const auto in = dfd::expand_inputs({root_ + "/d"}, nullptr);
  EXPECT_EQ(sources(in), (std::vector<std::string>{root_ + "/d/one.png"}));
}

TEST_F(TempTree, AnEmptyDirectoryAddsNothingAndANote) {
  fs::create_directories(root_ + "/empty/sub");
  touch("empty/sub/readme.txt");
  std::vector<std::string> notes;
  const auto in = dfd::expand_inputs({root_ + "/empty"}, &notes);
  EXPECT_TRUE(in.empty());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find(root_ + "/empty: no media files"), std::string::npos) << notes[0];
}

TEST_F(TempTree, GlobsExpandSortedAndAPatternWithoutMatchIsAFailedInput) {
  touch("g/b.png");
  touch("g/a.png");
  touch("g/c.avi");
  const auto in = dfd::expand_inputs({root_ + "/g/*.png", root_ + "/g/*.nothing"}, nullptr);
  ASSERT_EQ(in.size(), 3u);
  EXPECT_EQ(in[0].source, root_ + "/g/a.png");
  EXPECT_EQ(in[1].source, root_ + "/g/b.png");
  EXPECT_EQ(in[2].source, root_ + "/g/*.nothing");
  EXPECT_EQ(in[2].error, "no file matches this pattern");
}

TEST_F(TempTree, MissingFilesAndRemoteUrisAreFailedInputsOthersStay) {
  const std::string f = touch("ok.png");
  gchar* uri = g_filename_to_uri(f.c_str(), nullptr, nullptr);
  const std::string file_uri = uri;
  g_free(uri);
  const auto in =
      dfd::expand_inputs({root_ + "/missing.avi", "https://example.org/v.mp4", file_uri, "file:///no/such"}, nullptr);
  ASSERT_EQ(in.size(), 4u);
  EXPECT_EQ(in[0].error, "no such file or directory");
  EXPECT_NE(in[1].error.find("only local files can be scanned"), std::string::npos) << in[1].error;
  EXPECT_EQ(in[2].source, file_uri);
  EXPECT_EQ(in[2].path, f);
  EXPECT_TRUE(in[2].error.empty());
  EXPECT_EQ(in[3].error, "no such file or directory");
}

TEST_F(TempTree, UnreadableDirectoryIsAFailedInput) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every directory";
  touch("locked/a.png");
  fs::permissions(root_ + "/locked", fs::perms::none);
  const auto in = dfd::expand_inputs({root_ + "/locked"}, nullptr);
  fs::permissions(root_ + "/locked", fs::perms::owner_all);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_NE(in[0].error.find("cannot read this directory"), std::string::npos) << in[0].error;
}

TEST_F(TempTree, AtomicWriteLeavesOnlyTheWholeFile) {
  const std::string p = root_ + "/r.json";
  dfd::write_file_atomically(p, "{\"a\": 1}\n");
  dfd::write_file_atomically(p, "{\"a\": 2}\n");
  EXPECT_EQ(read(p), "{\"a\": 2}\n");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(root_)) files += (void(e), 1);
  EXPECT_EQ(files, 1u);  // no temporary left behind
  EXPECT_THROW(dfd::write_file_atomically(root_ + "/no/such/dir/r.json", "x"), std::runtime_error);
}

TEST(ScanBatchThreads, TheBudgetIsSplitBetweenScansAtLeastOneEach) {
  EXPECT_EQ(dfd::threads_per_scan(8, 4), 2);
  EXPECT_EQ(dfd::threads_per_scan(8, 3), 2);
  EXPECT_EQ(dfd::threads_per_scan(2, 4), 1);
  EXPECT_EQ(dfd::threads_per_scan(16, 1), 16);
  EXPECT_EQ(dfd::threads_per_scan(4, 0), 4);
}

TEST(ScanBatchSummary, CsvQuotesOnlyWhatNeedsItAndLeavesFailedNumbersEmpty) {
  const std::vector<BatchRow> rows = {scanned("a.avi", "FAKE", 0.875), scanned("b,c.png", "NO_FACE", 0),
                                      failed("bad.avi")};
  EXPECT_EQ(dfd::summary_csv(rows),
            "input,status,verdict,fake_probability,threshold,tracks,frames,elapsed_s,report,error_kind,error\n"
            "a.avi,scanned,FAKE,0.875000,0.500000,1,24,1.250,out/a.avi.json,,\n"
            "\"b,c.png\",scanned,NO_FACE,0.000000,0.500000,0,24,1.250,\"out/b,c.png.json\",,\n"
            "bad.avi,failed,,,,,,,,decode,\"bad.avi: truncated, \"\"corrupt\"\"\"\n");
}

TEST(ScanBatchSummary, JsonLinesHaveNumbersAsNumbersAndNullsForFailures) {
  BatchRow resumed = scanned("r.avi", "REAL", 0.25);
  resumed.status = BatchRow::Status::Resumed;
  const std::string text = dfd::summary_jsonl({resumed, failed("bad.avi")});
  std::istringstream lines(text);
  std::string l1, l2, l3;
  std::getline(lines, l1);
  std::getline(lines, l2);
  EXPECT_FALSE(std::getline(lines, l3));
  const auto a = nlohmann::json::parse(l1), b = nlohmann::json::parse(l2);
  EXPECT_EQ(a["input"], "r.avi");
  EXPECT_EQ(a["status"], "resumed");
  EXPECT_EQ(a["verdict"], "REAL");
  EXPECT_DOUBLE_EQ(a["fake_probability"].get<double>(), 0.25);
  EXPECT_EQ(a["tracks"], 1);
  EXPECT_EQ(a["frames"], 24);
  EXPECT_TRUE(a["error"].is_null());
  EXPECT_EQ(b["status"], "failed");
  EXPECT_TRUE(b["verdict"].is_null() && b["fake_probability"].is_null() && b["report"].is_null());
  EXPECT_EQ(b["error_kind"], "decode");
  EXPECT_EQ(b["error"], "bad.avi: truncated, \"corrupt\"");
}

TEST(ScanBatchSummary, NonUtf8FileNamesDoNotBreakJsonLines) {
  const std::string text = dfd::summary_jsonl({scanned("bad\xff.png", "REAL", 0.1)});
  EXPECT_NO_THROW(nlohmann::json::parse(text.substr(0, text.size() - 1)));
}

TEST(ScanBatchSummary, ExitStatusSaysFakeFoundAndOrFailed) {
  const auto real = scanned("r", "REAL", 0.1), fake = scanned("f", "FAKE", 0.9), none = scanned("n", "NO_FACE", 0);
  const auto bad = failed("x");
  EXPECT_EQ(dfd::batch_exit_code({}), 0);
  EXPECT_EQ(dfd::batch_exit_code({real, none}), 0);
  EXPECT_EQ(dfd::batch_exit_code({real, fake}), 10);
  EXPECT_EQ(dfd::batch_exit_code({real, bad}), 1);
  EXPECT_EQ(dfd::batch_exit_code({fake, bad, real}), 12);
}

TEST(ScanBatchSummary, TableHasARowPerInputAndATally) {
  BatchRow resumed = scanned("r.avi", "REAL", 0.25);
  resumed.status = BatchRow::Status::Resumed;
  const std::string t = dfd::summary_table({scanned("a.avi", "FAKE", 0.875), resumed, failed("bad.avi")});
  EXPECT_EQ(t,
            "VERDICT   P(FAKE)  TRACKS   FRAMES  SECONDS  INPUT\n"
            "FAKE       0.8750       1       24     1.25  a.avi\n"
            "REAL       0.2500       1       24     1.25  r.avi  (resumed)\n"
            "FAILED          -       -        -        -  bad.avi: truncated, \"corrupt\"\n"
            "3 inputs: 1 FAKE, 1 REAL, 0 NO_FACE, 1 failed (1 from earlier reports)\n");
}

TEST(ScanBatchProgress, LinesForATerminalAndForALog) {
  EXPECT_EQ(dfd::BatchProgress::bar_line(3, 12, 1, 0, 2, 30, 12),
            "[###---------]  3/12 files  1 FAKE  0 failed  2 running  0:30  ETA 1:30");
  EXPECT_EQ(dfd::BatchProgress::bar_line(12, 12, 1, 1, 0, 3700, 4), "[####]  12/12 files  1 FAKE  1 failed  0 running  1:01:40");
  EXPECT_EQ(dfd::BatchProgress::plain_line(2, 5, scanned("a.avi", "FAKE", 0.875)), "[2/5] FAKE 0.8750 a.avi (1.25 s)");
  EXPECT_EQ(dfd::BatchProgress::plain_line(3, 5, failed("b.avi")), "[3/5] FAILED b.avi: truncated, \"corrupt\"");
  BatchRow other = failed("c.avi");
  other.error = "no frame decoded";  // a message that does not name the file gets its name
  EXPECT_EQ(dfd::BatchProgress::plain_line(4, 5, other), "[4/5] FAILED c.avi: no frame decoded");
}
