# frozen_string_literal: true

require "fileutils"
require "json"
require "securerandom"

module Hymenoptera
  # Write files so that a reader sees the old content or the whole new content, never a half; and
  # never destroy what the run did not create (mirrors reference_py/atomic.py, which explains the
  # rules: an output is claimed before any long work (new, or this tool's own; locked; leftovers of
  # interrupted runs tidied) and written last, into a temporary folder or file renamed into place).
  module Atomic
    MARKER = ".hymenoptera-output.json"
    SIGNATURE_SUFFIXES = %w[.json .bin .png .pth].freeze # what a tool wrote before MARKER existed

    module_function

    # Yields a temporary path beside target; renames it onto target only if the block succeeds.
    def path(target)
      FileUtils.mkdir_p(File.dirname(target))
      tmp = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
      begin
        yield tmp
        File.rename(tmp, target)
      ensure
        FileUtils.rm_f(tmp)
      end
    end

    def write(target, data)
      path(target) { |tmp| File.binwrite(tmp, data) }
    end

    # Yields a temporary directory beside target; it replaces target only if the block succeeds.
    def dir(target)
      FileUtils.mkdir_p(File.dirname(target))
      tmp = nil
      begin
        signals_held do
          tmp = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
          Dir.mkdir(tmp)
        end
        yield tmp
        signals_held do # a signal between the two renames would leave the target missing
          if File.exist?(target)
            old = File.join(File.dirname(target), ".#{File.basename(target)}.old")
            FileUtils.rm_rf(old)
            File.rename(target, old)
            File.rename(tmp, target)
            FileUtils.rm_rf(old)
          else
            File.rename(tmp, target)
          end
        end
      ensure
        FileUtils.rm_rf(tmp) if tmp
      end
    end

    # SIGINT and SIGTERM wait until the block is done, then take effect: a temporary entry made inside is
    # already in its cleanup's hands when they do (a signal between its creation and the `begin` would leak it).
    def signals_held(&block)
      Thread.handle_interrupt(SignalException => :never, &block)
    end

    # An output option's value: a path, not an empty word (File.join("", x) is /x).
    def check_path_option(value, option)
      return value unless value.nil? || value.strip.empty?

      raise UserError, "#{option} #{JSON.generate(value.to_s)}: expected a path; pass a new folder or file name, " \
                       "e.g. #{option} runs/mine"
    end

    # Relative paths of every file and link below folder, MARKER excepted, sorted.
    def files_below(folder)
      found = []
      walk = lambda do |relative|
        Dir.children(relative.empty? ? folder : File.join(folder, relative)).each do |name|
          path = relative.empty? ? name : File.join(relative, name)
          full = File.join(folder, path)
          if File.directory?(full) && !File.symlink?(full)
            walk.call(path)
          else
            found << path
          end
        end
      end
      walk.call("")
      found.reject { |name| name == MARKER }.sort
    end

    def read_marker(folder)
      marker = JSON.parse(File.read(File.join(folder, MARKER)))
      marker if marker.is_a?(Hash) && marker["files"].is_a?(Array)
    rescue SystemCallError, JSON::ParserError
      nil
    end

    # An exclusive flock on path; the file is removed when released (and re-taken if it vanished meanwhile).
    class Lock
      attr_reader :path

      def initialize(path)
        @path = path
        @file = nil
      end

      # nil once held; else the process id the holder wrote (or "?").
      def acquire
        loop do
          file = File.open(path, File::RDWR | File::CREAT, 0o666)
          unless file.flock(File::LOCK_EX | File::LOCK_NB)
            holder = file.read(64).to_s.strip
            file.close
            return holder.empty? ? "?" : holder
          end
          same = begin
            File.identical?(file, path)
          rescue SystemCallError
            false
          end
          if same
            file.truncate(0)
            file.write("#{Process.pid}\n")
            file.flush
            @file = file
            return nil
          end
          file.close # released and removed by its holder between our open and our flock: again
        end
      end

      def release
        return unless @file

        FileUtils.rm_f(path)
        @file.close
        @file = nil
      end
    end

    # What OutputDir and OutputFile share: the lock, the leftovers of interrupted runs, the parents made.
    class Output
      attr_reader :target, :tool, :option

      def initialize(target, tool, option)
        @target = target
        @tool = tool
        @option = option
        @lock = Lock.new(File.join(File.dirname(target), ".#{File.basename(target)}.lock"))
        @made_parents = []
      end

      def fix
        "move it away or choose another #{option}"
      end

      # Checks the target, locks it, tidies what interrupted runs left; raises UserError before any work.
      def claim
        make_parents
        begin
          holder = @lock.acquire
          if holder
            raise UserError, "#{target} is being written by another run (process #{holder}; lock #{@lock.path}); " \
                             "wait for it to finish or choose another #{option}"
          end
          tidy_leftovers
          check_target
        rescue Exception # rubocop:disable Lint/RescueException -- released on any exit, then re-raised
          release
          raise
        end
        self
      end

      def release
        @lock.release
        @made_parents.reverse_each do |parent| # the folders claim made, if the run wrote nothing there
          Dir.rmdir(parent)
        rescue SystemCallError
          nil
        end
        @made_parents = []
      end

      # claim, yield, release (Python's `with`).
      def hold
        claim
        ok = false
        result = yield self
        ok = true
        result
      ensure
        @made_parents = [] if ok # they hold the result now
        release
      end

      def leftovers(name)
        pattern = /\A\.#{Regexp.escape(name)}\.[A-Za-z0-9_]+\.tmp\z/
        Dir.children(File.dirname(target)).select { |entry| pattern.match?(entry) }.sort
           .map { |entry| File.join(File.dirname(target), entry) }
      end

      private

      def make_parents
        missing = []
        parent = File.dirname(target)
        until File.directory?(parent)
          if File.exist?(parent) || File.symlink?(parent)
            raise UserError, "#{option} #{target}: #{parent} is not a folder; #{fix}"
          end

          missing << parent
          parent = File.dirname(parent)
        end
        missing.reverse_each do |folder|
          Dir.mkdir(folder)
          @made_parents << folder
        end
      end

      def report(message)
        warn "#{tool}: #{message}"
      end
    end

    # A folder written whole: MARKER inside lists its files (or, with owned:, the tool's own index does).
    class OutputDir < Output
      def initialize(target, tool, option, signature: nil, keep_foreign: false)
        super(target, tool, option)
        @signature = signature # a file every run of the tool wrote, before MARKER existed
        @keep_foreign = keep_foreign
      end

      # The files of folder this tool wrote (relative paths), or nil if the folder is not this tool's.
      def owned(folder)
        marker = Atomic.read_marker(folder)
        return (marker["tool"] == tool ? marker["files"] : nil) if marker
        return unless @signature && File.file?(File.join(folder, @signature))

        Atomic.files_below(folder).select { |name| name.end_with?(*SIGNATURE_SUFFIXES) }
      end

      def foreign(folder)
        mine = owned(folder)
        files = Atomic.files_below(folder)
        return (files.empty? && !File.exist?(File.join(folder, MARKER)) ? [] : nil) if mine.nil?

        files - mine
      end

      def check_target
        if File.symlink?(target) || (File.exist?(target) && !File.directory?(target))
          raise UserError, "#{target} exists and is not a folder #{tool} wrote; #{fix}"
        end
        return unless File.exist?(target)

        strangers = foreign(target)
        raise UserError, "#{target} exists and was not written by #{tool} (no #{MARKER} in it); #{fix}" if strangers.nil?
        return if strangers.empty? || @keep_foreign

        raise UserError, "#{target} holds #{strangers.size} file(s) #{tool} did not write (first: #{strangers.first}); " \
                         "#{tool} replaces the whole folder: move them away or choose another #{option}"
      end

      def tidy_leftovers
        leftovers(File.basename(target)).each do |tmp|
          ours = File.directory?(tmp) && (Atomic.read_marker(tmp)&.fetch("tool", nil) == tool || Dir.empty?(tmp)) # empty: killed at once
          if ours && !File.symlink?(tmp)
            FileUtils.rm_rf(tmp)
            report "removed #{tmp}, left by an interrupted run"
          else
            report "left #{tmp} alone: it looks like a leftover of an interrupted run, but not one of #{tool}'s; " \
                   "remove it yourself"
          end
        end
        old = old_path
        return unless File.directory?(old) && !File.symlink?(old) && foreign(old) == []

        if File.exist?(target) || File.symlink?(target)
          remove_owned(old)
          report "removed #{old}, left by an interrupted run"
        else
          File.rename(old, target)
          report "restored #{target} from #{old}, left by a run interrupted while replacing it"
        end
      end

      # Yields a temporary folder beside the target; when the block succeeds it becomes the target.
      def write
        tmp = nil
        begin
          Atomic.signals_held do
            tmp = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
            Dir.mkdir(tmp)
          end
          new_marker(tmp, []) # a leftover of this run is recognisably this tool's
          yield tmp
          new_marker(tmp, Atomic.files_below(tmp))
          Atomic.signals_held { commit(tmp) } # a signal between the two renames would leave the target missing
        ensure
          FileUtils.rm_rf(tmp) if tmp && File.exist?(tmp)
        end
      end

      private

      def old_path
        File.join(File.dirname(target), ".#{File.basename(target)}.old")
      end

      def new_marker(folder, files)
        File.write(File.join(folder, MARKER), JSON.pretty_generate({tool: tool, files: files}) + "\n")
      end

      # Removes the files this tool wrote and the folders they leave empty; anything else stays.
      def remove_owned(folder)
        ((owned(folder) || []) + [MARKER]).each { |name| FileUtils.rm_f(File.join(folder, name)) }
        Dir.glob("**/", base: folder).map { |sub| sub.chomp("/") }.reject(&:empty?).sort_by { |sub| -sub.length }.each do |sub|
          Dir.rmdir(File.join(folder, sub))
        rescue SystemCallError
          nil
        end
        begin
          Dir.rmdir(folder)
        rescue SystemCallError
          report "kept #{folder}: it holds files #{tool} did not write"
        end
      end

      def commit(tmp)
        return File.rename(tmp, target) unless File.exist?(target)

        check_target # nothing foreign has appeared while we worked
        if @keep_foreign
          foreign(target).each do |name|
            next if File.exist?(File.join(tmp, name))

            FileUtils.mkdir_p(File.dirname(File.join(tmp, name)))
            File.link(File.join(target, name), File.join(tmp, name))
          end
        end
        File.rename(target, old_path)
        File.rename(tmp, target)
        if owned(old_path)
          remove_owned(old_path)
        else
          begin
            Dir.rmdir(old_path) # the empty folder the user made for us
          rescue SystemCallError
            nil
          end
        end
      end
    end

    # A file (and its companions, e.g. a bundle's .bin) written by renaming a temporary file; owned
    # says whether the existing target and companions are this tool's to replace.
    class OutputFile < Output
      def initialize(target, tool, option, companions: [], &owned)
        super(target, tool, option)
        @owned = owned
        @paths = [target, *companions]
      end

      def check_target
        @paths.each do |path|
          raise UserError, "#{path} is a folder; #{option} names a file: #{fix}" if File.directory?(path)
        end
        existing = @paths.find { |path| File.exist?(path) }
        return if existing.nil? || @owned.call(target)

        raise UserError, "#{existing} exists and was not written by #{tool}; #{tool} does not replace it: #{fix}"
      end

      def tidy_leftovers
        @paths.each do |path|
          leftovers(File.basename(path)).each do |tmp|
            next unless File.file?(tmp) && !File.symlink?(tmp)

            File.unlink(tmp)
            report "removed #{tmp}, left by an interrupted run"
          end
        end
      end
    end
  end
end
