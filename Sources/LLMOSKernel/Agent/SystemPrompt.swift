import Foundation

/// The kernel's system prompt and the short notes it adds to a conversation. Small on
/// purpose: a 135M-parameter model has little attention to spare, and every token of it is
/// paid on every turn (about 60 tokens with tools, 35 without).
public enum AgentPrompts {
    /// "Monday 1 December 2025".
    public static func dateLine(_ date: Date, timeZone: TimeZone = .current) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "EEEE d MMMM yyyy"
        return formatter.string(from: date)
    }

    public static func system(date: Date, workspace: String, hasTools: Bool, timeZone: TimeZone = .current) -> String {
        var text = "You are the assistant of llmos. Today is \(dateLine(date, timeZone: timeZone)). Workspace: \(workspace)."
        if hasTools {
            text += "\nUse a tool when one fits the task: call it with JSON arguments that match its schema; its result comes back to you. "
                + "When you have the answer, reply in plain text without a tool call."
        } else {
            text += "\nReply in plain text."
        }
        return text
    }

    static func loopWarning(tool: String, count: Int) -> String {
        "You called \(tool) with the same arguments \(count) times and got the same result each time. "
            + "Do not call it again: use that result, try something different, or give your answer."
    }

    static func noProgress(calls: Int) -> String {
        "Your last \(calls) tool calls brought nothing new. Stop guessing: use what you have, or give your answer."
    }

    static func forcedAnswerNoProgress() -> String {
        "Your tool calls bring nothing new. Tools are off now: give your best answer from what you have."
    }

    static func stopRequested() -> String {
        "Stop here: you were asked to stop. Give your best final answer now from what you have, without calling tools."
    }

    static func forcedAnswer(tool: String) -> String {
        "You keep repeating \(tool). Tools are off now: give your best answer from what you have."
    }

    static func lastTurn(_ limit: BudgetTracker.Limit) -> String {
        "Stop here: \(limit.what) is reached. Give your best final answer now from what you have, without calling tools."
    }

    static func repair(_ error: LLMOSError) -> String {
        "Your last reply could not be read (\(error.message)). Reply again: plain text, or tool calls with JSON object arguments."
    }

    /// Passages retrieved for the task, numbered, with their sources, for the model to cite.
    static func passages(_ passages: [RetrievedPassage]) -> String {
        var text = "Passages from the user's documents that may help. Use them when they are relevant and cite them by number, like [1]:"
        for p in passages { text += "\n[\(p.number)] (\(p.source)) \(p.text)" }
        return text
    }
}
