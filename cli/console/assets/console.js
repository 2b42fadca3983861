// The console's only script: the live tail on /streams/tail (Server-Sent Events from
// /streams/tail/events). Every other page works without JavaScript.
/* global document, EventSource */
'use strict';

function startTail(table) {
  const body = table.querySelector('tbody');
  const status = document.getElementById('tail-status');
  const source = new EventSource(table.dataset.source);
  source.addEventListener('ready', () => {
    status.textContent = 'Following: new events appear below as they are stored.';
  });
  source.addEventListener('message', (message) => {
    const event = JSON.parse(message.data);
    const row = document.createElement('tr');
    const link = document.createElement('a');
    link.href = `/streams/view?id=${encodeURIComponent(event.ID)}&from=${event.Version}`;
    link.textContent = event.ID;
    const cells = [event.RecordedAt, link, String(event.Version), event.Group, event.EventType, event.Data];
    for (const value of cells) {
      const cell = document.createElement('td');
      if (typeof value === 'string') cell.textContent = value;
      else cell.append(value);
      row.append(cell);
    }
    row.lastChild.className = 'json';
    body.append(row);
  });
  source.addEventListener('error', () => {
    status.textContent = 'Disconnected: the console stopped, or the connection dropped (reload to follow again).';
  });
}

document.addEventListener('DOMContentLoaded', () => {
  const tail = document.getElementById('tail');
  if (tail) startTail(tail);
});
