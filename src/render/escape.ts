/** Text a person typed, made inert in Slack mrkdwn: it cannot ping the channel or forge a mention or link. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
}
