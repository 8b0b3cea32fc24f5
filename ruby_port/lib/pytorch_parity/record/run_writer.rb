# frozen_string_literal: true

require "fileutils"
require "json"
require "time"
require_relative "../lock"

module PytorchParity
  module Record
    # The run format (parity/RUN_FORMAT.md, read by parity/run_format.py; Python writes it in the same
    # module): run.json once at the start, then events.jsonl, one JSON object a line, each appended
    # with one write as it happens, and the tensors' bytes in tensors-PID.bin, one file a process (a
    # DataLoader worker writes its own). What a crashed run saw is on disk up to its last event.
    FORMAT = "pytorch-parity-run/1"
    OWN_FILE = /\A(run\.json|events\.jsonl|tensors-\d+\.bin)\z/
    OWN_TEMPORARY = /\A\.run\.json\.\d+\.tmp\z/ # run.json being written: what a kill can leave
    UNWRITABLE = [Errno::EACCES, Errno::EPERM, Errno::EROFS].freeze

    # A folder or an option the recorder cannot use: one line, the same words as parity/record.py.
    class Error < StandardError; end

    # Claims DIR and writes run.json (info, or what the lambda info gives once DIR is claimed: the recorder loads
    # LibTorch only then), then appends events. The claim rule of every writer of the project
    # (reference_py/output_claim.py, hymenoptera/output_claim.rb), in its smallest form, as this recorder
    # loads without the port: the writers' lock beside DIR (.DIR.lock, Lock) is held from the claim to close,
    # run.json is the marker that names the recorder, its files are known by name (OWN_FILE), and what a
    # killed run left half-written is tidied by its name alone (OWN_TEMPORARY).
    class RunWriter
      attr_reader :dir

      def initialize(dir, info)
        @dir = File.expand_path(dir)
        @pid = Process.pid
        @lock = Lock.beside(@dir)
        begin
          take_lock
          claim
          write_run_json({format: FORMAT}.merge(info.respond_to?(:call) ? info.call : info))
          @events = File.open(File.join(@dir, "events.jsonl"), File::WRONLY | File::CREAT | File::APPEND)
        rescue SystemCallError => e
          @lock.release
          reason = e.class.new.message
          if UNWRITABLE.any? { |kind| e.is_a?(kind) }
            raise Error, "cannot record into #{@dir}: it is not writable (#{reason}); make it writable or give another folder"
          end

          raise Error, "cannot record into #{@dir}: #{reason}; give a new or empty folder"
        rescue Error
          @lock.release
          raise
        end
        @events.sync = true
        @blob = nil
        @blob_pid = nil
      end

      # One event: its fields and its tensors (name => Values::Array), the bytes first, then the line
      # that points at them.
      def event(kind, fields = {}, arrays = {})
        entry = {kind: kind}.merge(fields)
        entry[:tensors] = arrays.transform_values { |array| write_array(array) } unless arrays.empty?
        @events.syswrite(JSON.generate(entry, allow_nan: true) << "\n")
      end

      # The end of the recording: the lock released (by the process that took it, not by a forked child).
      def close
        @lock.release if Process.pid == @pid
      end

      private

      # Another run (a recording, or a trainer writing OUT_DIR/STRATEGY) holding DIR is refused before anything
      # in DIR is touched: a second recorder's claim would delete the first one's files as it writes them.
      def take_lock
        FileUtils.mkdir_p(File.dirname(@dir))
        holder = @lock.acquire
        return if holder.nil?

        raise Error, "cannot record into #{@dir}: it is being written by another run (process #{holder}; lock " \
                     "#{@lock.path}); wait for it to finish or give another folder"
      end

      # DIR must be new, empty, or a run this recorder wrote (its files are then removed, nothing else).
      def claim
        if File.exist?(@dir) && !File.directory?(@dir)
          raise Error, "cannot record into #{@dir}: it is a file; give a new or empty folder"
        end
        return FileUtils.mkdir_p(@dir) unless File.directory?(@dir)

        temporaries = Dir.children(@dir).sort.grep(OWN_TEMPORARY)
        entries = Dir.children(@dir).sort - temporaries
        foreign = entries.grep_v(OWN_FILE)
        if foreign.any? || (entries.any? && !own_run?)
          raise Error, "cannot record into #{@dir}: it holds files the recorder did not write " \
                       "(#{(foreign.empty? ? entries : foreign).first(3).join(", ")}); give a new or empty folder"
        end

        (temporaries + entries).each { |name| File.delete(File.join(@dir, name)) }
      end

      def own_run?
        JSON.parse(File.read(File.join(@dir, "run.json")))["format"].to_s.start_with?("pytorch-parity-run/")
      rescue SystemCallError, JSON::ParserError
        false
      end

      def write_run_json(info)
        tmp = File.join(@dir, ".run.json.#{Process.pid}.tmp")
        File.write(tmp, JSON.pretty_generate(info, allow_nan: true) + "\n")
        File.rename(tmp, File.join(@dir, "run.json"))
      end

      # Appends the bytes to this process's tensors-PID.bin; returns the event's entry for them.
      def write_array(array)
        if @blob_pid != Process.pid
          @blob_pid = Process.pid
          @blob = File.open(File.join(@dir, "tensors-#{@blob_pid}.bin"), File::WRONLY | File::CREAT | File::APPEND | File::BINARY)
          @blob_offset = @blob.size
        end
        offset, data = @blob_offset, array.bytes
        unless data.empty?
          data.respond_to?(:write_to) ? data.write_to(@blob) : @blob.syswrite(data) # a tensor from its own memory
        end
        @blob_offset += data.bytesize
        {dtype: array.dtype, shape: array.shape, form: array.form, file: File.basename(@blob.path), offset: offset,
         nbytes: data.bytesize}
      end
    end
  end
end
