// The console's only script (served from the console itself; the pages work without it): asks for
// confirmation in a dialog before a promote or rollback instead of a confirmation page, and shows
// the try-it answer in place. Registry text is only ever set with textContent.

function confirmMessage(form) {
  const data = new FormData(form);
  const model = decodeURIComponent(location.pathname.split('/')[2] || '');
  const alias = data.get('alias');
  const reason = data.get('reason');
  if (form.dataset.confirm === 'promote')
    return `Promote ${model}@${alias} to v${data.get('version')}?\n\nReason: ${reason}`;
  return `Roll back ${model}@${alias} to the version it served before?\n\nReason: ${reason}`;
}

for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (form.querySelector('input[name="confirm"]')) return;
    event.preventDefault();
    if (!form.reportValidity() || !window.confirm(confirmMessage(form))) return;
    const confirmed = document.createElement('input');
    confirmed.type = 'hidden';
    confirmed.name = 'confirm';
    confirmed.value = 'yes';
    form.append(confirmed);
    form.submit();
  });
}

const tryIt = document.getElementById('try-it');
if (tryIt) {
  tryIt.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = tryIt.querySelector('button');
    const show = (answer) => {
      document.getElementById('answer-version').textContent = answer.version || '';
      document.getElementById('answer-status').textContent = answer.status || '';
      document.getElementById('answer-error').textContent = answer.error || '';
      document.getElementById('answer-body').textContent = answer.body || '';
      document.getElementById('answer').hidden = false;
    };
    button.disabled = true;
    try {
      const response = await fetch(tryIt.action, {
        method: 'POST',
        headers: { accept: 'application/json' },
        body: new URLSearchParams(new FormData(tryIt)),
      });
      show(await response.json());
    } catch (error) {
      show({ error: `The console did not answer: ${error}` });
    } finally {
      button.disabled = false;
    }
  });
}
