// Package chat owns a chat turn: one question of a user in one of their
// conversations, answered from the documentation and recorded with how it
// ended. The HTTP layer only decodes the request, calls the Service and
// renders what it reports (as Server-Sent Events through a Sink, or as one
// JSON body); authentication and the choice of rate limit stay in the HTTP
// layer, which hands Ask the budget to charge (store.Charge) so that the
// token is spent in the transaction that stores the question.
//
// # A turn (Service.Ask)
//
//  1. Validate the question: trimmed, not empty, at most MaxQuestionChars
//     characters. A refused question stores nothing (InvalidError).
//  2. Read the history: the conversation's last DefaultHistoryMessages user
//     and assistant messages, failed answers left out.
//  3. Store the question, and the answer with a chosen id as
//     store.StatusStreaming, in the transaction that read the history
//     (store.StartTurn: two round trips for steps 2 and 3, so that a
//     burst of turns does not queue for the pool; with Ask's charge the
//     user's rate token is spent first in it, and a refusal stores
//     nothing). A missing, deleted or
//     foreign conversation is store.ErrNotFound and stores nothing. From
//     here on the user's message is never lost, whatever fails upstream,
//     and the answer's owner can stop it (Service.Stop) through any
//     replica.
//  4. Tell the sink both ids (Started): a streaming client learns them
//     before the first word arrives.
//  5. Retrieve the passages that best answer the question (embedding plus
//     vector search; a follow-up is rewritten by the model into a standalone
//     query, or offline leans on the history's last question) and tell the
//     sink the sources.
//  6. Generate the answer from question, history and passages (with no
//     document indexed at all, say so instead, without the model:
//     NoDocumentsAnswer, ReasonNoDocuments); every delta
//     the model writes goes to the sink as it arrives. A sink that fails
//     means the client went away: generation stops. The generator bounds
//     the model's silences (first token, between tokens).
//  7. Decide the answer's status: stopped when its owner stopped it (the
//     replica polls its streaming rows, see stopWatcher; no error);
//     complete; incomplete when retrieval or generation stopped because
//     the client went away (request context cancelled or the sink failing) or the server cut the turn to shut
//     down (Cut: ErrShuttingDown); failed when retrieval or the model
//     failed on their own (a model silent past its timeouts included).
//  8. Update the answer with that status, whatever text was produced, the
//     model and its token usage. The request context may have ended (the
//     client left), so the save runs on a context detached from it and
//     bounded by saveTimeout.
//  9. Report: the Turn, and an error saying how it ended when it did not
//     complete (ErrClientGone, ErrRetrievalFailed, ErrModelFailed, or
//     ErrAnswerNotStored when step 8 failed).
//
// On shutdown the server calls Cut once the drain is nearly over, then
// Wait: the turns still running store their answers before the database
// pool closes, so nothing the user sent or was shown is lost.
//
// A replica that dies mid-turn (killed, its node lost) never runs step 8:
// its answers would stay streaming. Every replica runs
// Service.SweepAbandoned, which marks answers streaming for longer than a
// live turn can last (AbandonedAfter) incomplete, content kept.
//
// Service.Regenerate runs a turn for a question already stored, that of
// an earlier answer: the question is not stored again, its history is what
// preceded it, and the old answer stays.
//
// Service.Run is the documentation widget's entry: it validates the
// question, starts a conversation titled from it when none is given, and
// runs the same turn. Service.Rate records a user's rating of an answer.
// Service.Stop marks a user's streaming answer stopped.
package chat
