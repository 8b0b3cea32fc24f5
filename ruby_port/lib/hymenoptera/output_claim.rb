# frozen_string_literal: true

require "fileutils"
require "json"
require_relative "../pytorch_parity/lock"
require_relative "atomic"

module Hymenoptera
  # Claim an output before any long work, and never destroy what the run did not create (mirrors
  # reference_py/output_claim.py, which explains the one claim rule of every writer: an output is claimed
  # before any long work (new, empty, or this tool's own, its marker naming the tool; locked; what
  # interrupted runs left tidied by name) and written last, into a temporary folder or file renamed into
  # place: atomic.rb).
  module OutputClaim
    MARKER = ".hymenoptera-output.json"
    SIGNATURE_SUFFIXES = %w[.json .bin .png .pth].freeze # what a tool wrote before MARKER existed
    UNWRITABLE = [Errno::EACCES, Errno::EPERM, Errno::EROFS].freeze

    module_function

    # An output option's value: a path, not an empty word (File.join("", x) is /x).
    def check_path_option(value, option)
      return value unless value.nil? || value.strip.empty?

      raise UserError, "#{option} #{JSON.generate(value.to_s)}: expected a path; pass a new folder or file name, " \
                       "e.g. #{option} runs/mine"
    end

    # path made absolute ("." and ".." taken away as written), its longest existing part with every link resolved
    # and the rest as written: where a folder that may not exist yet would be (output_claim.py's real_path).
    def real_path(path)
      path = File.absolute_path(path)
      rest = []
      until File.exist?(path) || path == File.dirname(path)
        rest.unshift(File.basename(path))
        path = File.dirname(path)
      end
      File.join(File.realpath(path), *rest)
    end

    # Whether path is folder or below it, links resolved (neither needs to exist).
    def inside?(path, folder)
      path = real_path(path)
      folder = real_path(folder)
      path == folder || path.start_with?("#{folder.chomp("/")}/")
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

    def remove(path)
      File.directory?(path) && !File.symlink?(path) ? FileUtils.rm_rf(path) : File.unlink(path)
    end

    # What OutputDir and OutputFile share: the lock, the leftovers of interrupted runs, the parents made.
    class Output
      attr_reader :target, :tool, :option

      def initialize(target, tool, option)
        @target = target
        @tool = tool
        @option = option
        @lock = PytorchParity::Lock.beside(target)
        @made_parents = []
      end

      def fix
        "move it away or choose another #{option}"
      end

      # The UserError for a folder the run may not write in, or error itself for another failure.
      def unwritable(folder, error)
        return error unless UNWRITABLE.any? { |kind| error.is_a?(kind) }

        UserError.new("#{folder} is not writable (#{error.class.new.message}); make it writable or choose another #{option}")
      end

      # Checks the target, locks it, tidies what interrupted runs left; raises UserError before any work.
      def claim
        make_parents
        holder = begin
          @lock.acquire
        rescue SystemCallError => e
          raise unwritable(File.dirname(target), e)
        end
        if holder
          raise UserError, "#{target} is being written by another run (process #{holder}; lock #{@lock.path}); " \
                           "wait for it to finish or choose another #{option}"
        end
        tidy_leftovers
        check_target
        self
      rescue Exception # rubocop:disable Lint/RescueException -- released on any exit, then re-raised
        release
        raise
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

      # What interrupted runs left beside the target, by name (leftover_pattern).
      def leftovers(name, kind = "tmp")
        pattern = Atomic.leftover_pattern(name, kind)
        Dir.children(File.dirname(target)).select { |entry| pattern.match?(entry) }.sort
           .map { |entry| File.join(File.dirname(target), entry) }
      end

      private

      def make_parents
        missing = []
        parent = File.dirname(target)
        loop do
          begin # one look each: another run may make the folder at any moment
            break if File.stat(parent).directory?
          rescue Errno::ENOENT, Errno::ENOTDIR
            unless File.symlink?(parent)
              missing << parent
              parent = File.dirname(parent)
              next
            end
          end
          raise UserError, "#{option} #{target}: #{parent} is not a folder; #{fix}"
        end
        missing.reverse_each do |folder|
          begin
            Dir.mkdir(folder)
          rescue Errno::EEXIST
            next if File.directory?(folder) # another run, starting at the same time, made it: theirs to keep

            raise UserError, "#{option} #{target}: #{folder} is not a folder; #{fix}"
          rescue SystemCallError => e
            raise unwritable(File.dirname(folder), e)
          end
          @made_parents << folder
        end
      end

      def report(message)
        warn "#{tool}: #{message}"
      end
    end

    # A folder written whole: MARKER inside names the tool and lists the files it wrote.
    class OutputDir < Output
      def initialize(target, tool, option, signature: nil)
        super(target, tool, option)
        @signature = signature # a file every run of the tool wrote, before MARKER existed
      end

      # The files of folder this tool wrote (relative paths), or nil if the folder is not this tool's.
      def owned(folder)
        marker = OutputClaim.read_marker(folder)
        return (marker["tool"] == tool ? marker["files"] : nil) if marker
        return unless @signature && File.file?(File.join(folder, @signature))

        OutputClaim.files_below(folder).select { |name| name.end_with?(*SIGNATURE_SUFFIXES) }
      end

      # The files of folder this tool did not write, or nil if the folder is not its own.
      def foreign(folder)
        files = OutputClaim.files_below(folder)
        mine = owned(folder)
        return (files.empty? && !File.exist?(File.join(folder, MARKER)) ? [] : nil) if mine.nil?

        files - mine
      end

      def check_target
        if File.symlink?(target) || (File.exist?(target) && !File.directory?(target))
          raise UserError, "#{target} exists and is not a folder #{tool} wrote; #{fix}"
        end
        return unless File.exist?(target)

        marker = OutputClaim.read_marker(target)
        if marker && marker["tool"] != tool
          raise UserError, "#{target} was written by #{marker["tool"]}, not by #{tool} (its #{MARKER} says so); #{fix}"
        end

        strangers = foreign(target)
        raise UserError, "#{target} exists and was not written by #{tool} (no #{MARKER} in it); #{fix}" if strangers.nil?
        return if strangers.empty?

        raise UserError, "#{target} holds #{strangers.size} file(s) #{tool} did not write (first: #{strangers.first}); " \
                         "#{tool} replaces the whole folder: move them away or choose another #{option}"
      end

      def tidy_leftovers
        leftovers(File.basename(target)).each do |tmp|
          OutputClaim.remove(tmp)
          report "removed #{tmp}, left by an interrupted run"
        end
        leftovers(File.basename(target), "old").each do |old|
          if File.exist?(target) || File.symlink?(target)
            OutputClaim.remove(old)
            report "removed #{old}, left by an interrupted run"
          else
            File.rename(old, target)
            report "restored #{target} from #{old}, left by a run interrupted while replacing it"
          end
        end
      end

      # Yields a temporary folder beside the target; when the block succeeds it becomes the target.
      def write
        tmp = nil
        begin
          PytorchParity::Lock.signals_held { tmp = Atomic.make_temporary(target) { |path| Dir.mkdir(path, 0o777) } }
          yield tmp
          new_marker(tmp, OutputClaim.files_below(tmp))
          PytorchParity::Lock.signals_held { commit(tmp) } # a signal between the two renames would leave the target missing
        ensure
          FileUtils.rm_rf(tmp) if tmp && File.exist?(tmp)
        end
      end

      private

      def new_marker(folder, files)
        File.write(File.join(folder, MARKER), JSON.pretty_generate({tool: tool, files: files}) + "\n")
      end

      def commit(tmp)
        return File.rename(tmp, target) unless File.exist?(target)

        check_target # nothing foreign has appeared while we worked
        old = tmp.delete_suffix(".tmp") + ".old"
        File.rename(target, old)
        File.rename(tmp, target)
        FileUtils.rm_rf(old) # the claim allowed only this tool's files in it
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
            OutputClaim.remove(tmp)
            report "removed #{tmp}, left by an interrupted run"
          end
        end
      end
    end
  end
end
