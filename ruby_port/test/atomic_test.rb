# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

# A signal that lands the moment a temporary output is made must not leak it, and what a killed run left
# is tidied by its name alone (the twin: reference_py/tests/test_atomic.py).
class AtomicTest < Minitest::Test
  include Hymenoptera::TestSupport
  Atomic = Hymenoptera::Atomic

  # SIGTERM sent to this process right after the temporary entry exists, before its maker returns.
  def sigterm_on_creation(&block)
    make = Atomic.method(:make_temporary)
    signalled = lambda do |target, &maker|
      make.call(target, &maker).tap { Process.kill("TERM", Process.pid) }
    end
    Atomic.stub(:make_temporary, signalled, &block)
  end

  def writers(target)
    {
      "OutputDir#write" => ->(&block) { Atomic::OutputDir.new(target, "train", "--out").write(&block) },
      "Atomic.path" => ->(&block) { Atomic.path(target, &block) }
    }
  end

  %w[OutputDir#write Atomic.path].each do |writer|
    define_method("test_a_signal_as_the_temporary_entry_is_made_leaves_nothing_with_#{writer}") do
      target = File.join(tmpdir, "scratch")
      error = assert_raises(SignalException) do
        sigterm_on_creation do
          writers(target).fetch(writer).call { flunk "the signal should have ended the run before the block" }
        end
      end
      assert_equal "SIGTERM", error.message
      assert_empty Dir.children(tmpdir)
    end
  end

  # Killed while writing (.NAME.<12 hex>.tmp: half a result, no marker yet) and between the two renames of a
  # swap (.NAME.<12 hex>.old, the earlier result; NAME missing): the next run removes the one and restores the
  # other, whatever they hold. Names that only resemble them (a user's backup, an empty folder) stay as they were.
  def test_a_killed_runs_leftovers_are_tidied_by_name_and_nothing_else
    target = File.join(tmpdir, "scratch")
    half = File.join(tmpdir, ".scratch.0123456789ab.tmp")
    Dir.mkdir(half)
    File.write(File.join(half, "curves.json"), '{"train_loss": [0.')
    earlier = File.join(tmpdir, ".scratch.ba9876543210.old")
    Dir.mkdir(earlier)
    File.write(File.join(earlier, "curves.json"), "[]")
    File.write(File.join(earlier, Atomic::MARKER), JSON.generate({tool: "train", files: ["curves.json"]}))
    others = %w[.scratch.old .scratch.backup.tmp .scratch.1234abcd.tmp .scratch.0123456789AB.tmp .scratch.0123456789ab.tmp.keep]
    others.each { |name| Dir.mkdir(File.join(tmpdir, name)) }
    File.write(File.join(tmpdir, ".scratch.old", "notes.txt"), "the user's backup")

    _, err = capture_io { Atomic::OutputDir.new(target, "train", "--out-dir", signature: "curves.json").hold { nil } }

    assert_equal "[]", File.read(File.join(target, "curves.json"))
    assert_equal (others + ["scratch"]).sort, Dir.children(tmpdir).sort
    assert_equal "the user's backup", File.read(File.join(tmpdir, ".scratch.old", "notes.txt"))
    assert(others.drop(1).all? { |name| Dir.empty?(File.join(tmpdir, name)) })
    assert_equal ["train: removed #{half}, left by an interrupted run",
                  "train: restored #{target} from #{earlier}, left by a run interrupted while replacing it"], err.lines(chomp: true)
  end

  def test_an_old_beside_a_present_target_and_a_files_temporary_are_removed_by_name
    target = File.join(tmpdir, "scratch")
    Dir.mkdir(target)
    File.write(File.join(target, Atomic::MARKER), JSON.generate({tool: "train", files: []}))
    earlier = File.join(tmpdir, ".scratch.00000000000f.old")
    Dir.mkdir(earlier)
    File.write(File.join(earlier, "curves.json"), "[]")
    half_file = File.join(tmpdir, ".net.pth.00000000000e.tmp")
    File.write(half_file, "PK")
    mine = File.join(tmpdir, ".net.pth.mine.tmp")
    File.write(mine, "the user's")

    _, err = capture_io do
      Atomic::OutputDir.new(target, "train", "--out-dir").hold { nil }
      Atomic::OutputFile.new(File.join(tmpdir, "net.pth"), "pretrained", "--out") { true }.hold { nil }
    end

    assert_equal [".net.pth.mine.tmp", "scratch"], Dir.children(tmpdir).sort
    assert_equal "the user's", File.read(mine)
    assert_equal ["train: removed #{earlier}, left by an interrupted run",
                  "pretrained: removed #{half_file}, left by an interrupted run"], err.lines(chomp: true)
  end

  def test_a_folder_it_may_not_write_in_is_refused_with_the_fix
    refused = ->(*) { raise Errno::EACCES, File.join(tmpdir, ".scratch.lock") }
    error = File.stub(:open, refused) do
      assert_raises(Hymenoptera::UserError) { Atomic::OutputDir.new(File.join(tmpdir, "scratch"), "train", "--out-dir").claim }
    end
    assert_equal "#{tmpdir} is not writable (Permission denied); make it writable or choose another --out-dir", error.message
  end

  # What train's --out-dir check asks (the twin: reference_py/tests/test_atomic.py's).
  def test_inside_resolves_links_and_paths_that_do_not_exist_yet
    FileUtils.mkdir_p(File.join(tmpdir, "data", "train"))
    File.symlink(File.join(tmpdir, "data", "train"), File.join(tmpdir, "link"))
    Dir.chdir(tmpdir) do
      assert Atomic.inside?("data", "data") && Atomic.inside?("data/train/ants/new", File.join(tmpdir, "data"))
      assert Atomic.inside?("link/ants", "data") && Atomic.inside?("data/../data/x", "data")
      refute Atomic.inside?("data2", "data") || Atomic.inside?(".", "data") || Atomic.inside?("data", "data/train")
      assert_equal File.join(File.realpath(tmpdir), "data", "train", "x"), Atomic.real_path("link/new/../x")
    end
  end
end
