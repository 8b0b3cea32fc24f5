# frozen_string_literal: true

require "fileutils"

module PytorchParity
  # The lock every writer of the project takes beside its output (the twin of reference_py/lock.py's
  # Lock): an exclusive flock on .NAME.lock beside the target, holding the holder's process id, released by
  # the kernel if the process dies, the file removed when released (and taken again if it vanished
  # meanwhile). One class for the recorder (record/run_writer.rb), which loads without the port, and the
  # port's writers (hymenoptera/output_claim.rb): a recording and a trainer, or two recordings, in either
  # language, on one folder exclude each other.
  class Lock
    attr_reader :path

    def initialize(path)
      @path = path
      @file = nil
    end

    # SIGINT and SIGTERM wait until the block is done, then take effect: a temporary entry made inside is
    # already in its cleanup's hands when they do (a signal between its creation and the `begin` would leak it).
    def self.signals_held(&block)
      Thread.handle_interrupt(SignalException => :never, &block)
    end

    # The writers' lock of target: .NAME.lock in its folder (a trainer's output and a recording alike).
    def self.beside(target)
      new(File.join(File.dirname(target), ".#{File.basename(target)}.lock"))
    end

    # nil once held; else the process id the holder wrote (or "?").
    def acquire
      Lock.signals_held { take } # a signal between the file's creation and @file would leave it behind
    end

    def release
      return unless @file

      FileUtils.rm_f(path)
      @file.close
      @file = nil
    end

    private

    def take
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
  end
end
