# frozen_string_literal: true

# The fork server's Ruby twin (parity/fork_server.py says what it is for and the protocol):
#
#   bundle exec ruby parity/fork_server.rb [--socket PATH] LIB...
#
# requires the LIBs (torch: LibTorch), then forks a child for each `ruby [-rLIB...] SCRIPT ARGS` it reads
# on stdin, or from a client connected to the UNIX socket PATH (the fault-injection children's sessions,
# each running its Ruby side through its parent's server), which takes the command's variables, folder,
# output and priority, requires each -r LIB in order and loads SCRIPT with $PROGRAM_NAME and ARGV as
# `ruby` sets them; an exception it raises ends the child as it ends `ruby` (at_exit sees it in $!, the
# message goes to stderr, exit 1). What differs: the backtrace names the script's top level
# `<top (required)>`, not `<main>`, and ends in this file's frames; and the child ends without Ruby's
# teardown (exit_as_ruby). A client that goes away takes its commands still running with it.

require "json"
require "socket"

module ForkServer
  POLL = 0.05 # seconds between looks for ended children while no command comes

  module_function

  # Forks a child per command until stdin ends; returns in a child, with its command.
  def serve(preload, socket_path)
    preload.each { |name| require name }
    listener = socket_path && UNIXServer.new(socket_path)
    clients = {$stdin => $stdout} # where commands come from => where their answers go
    buffers = Hash.new { |hash, io| hash[io] = +"" }
    running = {} # pid => [when it started, where its answers go]
    loop do
      ready, = IO.select([*clients.keys, listener].compact, nil, nil, POLL)
      (ready || []).each do |io|
        if io.equal?(listener)
          client = listener.accept
          clients[client] = client
          next
        end
        chunk = io.read_nonblock(65_536, exception: false)
        next if chunk == :wait_readable

        if chunk.nil? # what this client sends has ended
          to = clients.delete(io)
          if io.equal?($stdin) # the parent: the server ends
            stop(running, nil)
            File.unlink(socket_path) if socket_path
            return nil
          end
          stop(running, to)
          io.close
          next
        end
        buffers[io] << chunk
        while (newline = buffers[io].index("\n"))
          request = JSON.parse(buffers[io].slice!(0..newline))
          pid = fork
          if pid.nil?
            listener&.close
            clients.each_key { |from| from.close unless from.equal?($stdin) }
            return request
          end

          running[pid] = [Process.clock_gettime(Process::CLOCK_MONOTONIC), clients[io]]
          answer(clients[io], started: pid)
        end
      end
      reap(running, Process::WNOHANG)
    end
  end

  # A child's CPU is what the children's total grew by when it was reaped (this process reaps one at a time).
  def reap(running, flags, pid = -1)
    until running.empty?
      before = Process.times
      ended, status = Process.wait2(pid, flags)
      return if ended.nil?

      after = Process.times
      started, to = running.delete(ended)
      next unless started

      user = after.cutime - before.cutime
      answer(to, pid: ended, status: status.exitstatus || -status.termsig.to_i, cpu: user + after.cstime - before.cstime,
                 user: user, wall: Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
      return if pid != -1
    end
  end

  # Stops the children still running whose answers go to `to` (nil: all of them).
  def stop(running, to)
    running.select { |_, (_, answers)| to.nil? || answers.equal?(to) }.each_key do |pid|
      Process.kill("TERM", pid)
      reap(running, 0, pid)
    end
  end

  def answer(to, message)
    to.syswrite("#{JSON.generate(message)}\n") unless to.closed?
  rescue SystemCallError # a client that went away: its commands are stopped
    nil
  end

  # In the forked child: the command's variables, folder, output and priority, then `ruby [-rLIB...] SCRIPT ARGS`.
  def run_child(request)
    $stdin.reopen(File::NULL)
    $stdout.reopen(request.fetch("output"), "w")
    request["errors"] ? $stderr.reopen(request["errors"], "w") : $stderr.reopen($stdout)
    argv = request.fetch("argv").dup
    libraries = []
    libraries << argv.shift.delete_prefix("-r") while argv.first&.match?(/\A-r./)
    script = argv.shift
    if script.nil? || script.start_with?("-")
      warn "parity/fork_server.rb: serves `ruby [-rLIB...] SCRIPT ARGS`, not #{request['argv']}"
      exit! 2
    end
    Dir.chdir(request.fetch("cwd"))
    ENV.update(request.fetch("env"))
    Process.setpriority(Process::PRIO_PROCESS, 0, Process.getpriority(Process::PRIO_PROCESS, 0) + request.fetch("niceness", 0))
    $PROGRAM_NAME = script # as `ruby` sets them before its -r libraries load (pytorch_parity/record reads them)
    ARGV.replace(argv)
    at_exit { exit_as_ruby($!) } # the first handler, so the last to run: after the program's (the recorder's end)
    libraries.each { |name| require name }
    load(File.absolute_path?(script) ? script : "./#{script}")
  end

  # How `ruby` ends after its at_exit handlers (the status, and an error's message on stderr), but at once: its
  # teardown would free every object and write to (so copy) each page of what the server loaded, 0.65 CPU-s a run.
  # The finalizers still pending then do not run; open files are flushed first.
  def exit_as_ruby(error)
    status = case error
             when nil then 0
             when SystemExit then error.status
             else
               $stderr.write(error.full_message(highlight: false))
               1
             end
    ObjectSpace.each_object(IO) { |io| io.flush unless io.closed? rescue nil }
    exit!(status)
  end
end

socket_path = (ARGV.shift(2).last if ARGV.first == "--socket")
request = ForkServer.serve(ARGV, socket_path)
ForkServer.run_child(request) if request
